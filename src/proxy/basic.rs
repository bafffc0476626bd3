//! Basic credentials for a proxy (RFC 7617): `Basic base64(user ":" password)`, and the
//! percent-decoding of the user info they come from in a URL (RFC 3986 §2.1).

use http::HeaderValue;

use super::ProxyUrlError;

/// The `Proxy-Authorization` value for `user` and `password`, marked sensitive so it is
/// not shown by `Debug` of a header map it ends up in.
pub(super) fn authorization(user: &[u8], password: &[u8]) -> HeaderValue {
    let mut credentials = Vec::with_capacity(user.len() + 1 + password.len());
    credentials.extend_from_slice(user);
    credentials.push(b':');
    credentials.extend_from_slice(password);
    let mut text = String::from("Basic ");
    base64(&credentials, &mut text);
    // Base64 output and "Basic " are visible ASCII: always a valid header value.
    let mut value = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// Appends the standard base64 encoding (RFC 4648 §4, with padding) of `bytes`.
fn base64(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
}

/// Decodes `%XX` escapes; any other byte stands for itself.
pub(super) fn percent_decode(s: &str) -> Result<Vec<u8>, ProxyUrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(ProxyUrlError::InvalidCredentials)?;
            let hex = std::str::from_utf8(hex).map_err(|_| ProxyUrlError::InvalidCredentials)?;
            let byte =
                u8::from_str_radix(hex, 16).map_err(|_| ProxyUrlError::InvalidCredentials)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = String::new();
            base64(input.as_bytes(), &mut out);
            assert_eq!(out, want, "{input:?}");
        }
        let mut out = String::new();
        base64(&[0xfb, 0xff, 0xbf], &mut out);
        assert_eq!(out, "+/+/");
    }

    #[test]
    fn basic_credentials_follow_rfc_7617() {
        // RFC 7617 §2's example.
        let value = authorization(b"Aladdin", b"open sesame");
        assert_eq!(value, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(value.is_sensitive());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%3A%2f").as_deref(), Ok(&b"a@b:/"[..]));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Ok("é".as_bytes()));
        for bad in ["%", "%4", "%zz", "a%4g"] {
            assert_eq!(
                percent_decode(bad),
                Err(ProxyUrlError::InvalidCredentials),
                "{bad}"
            );
        }
    }
}
