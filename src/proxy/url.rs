//! Proxy URLs: `http://[user[:password]@]host[:port][/]`.

use super::{basic, Proxy, ProxyUrlError};
use crate::proto::Origin;

/// Reads a proxy URL (see [`Proxy::parse`]).
pub(super) fn parse(url: &str) -> Result<Proxy, ProxyUrlError> {
    let rest = match url.find("://") {
        Some(at) if url[..at].eq_ignore_ascii_case("http") => &url[at + 3..],
        Some(_) => return Err(ProxyUrlError::UnsupportedScheme),
        None => url,
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if !path.is_empty() && path != "/" {
        return Err(ProxyUrlError::InvalidUrl);
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    // The origin parser knows hosts, brackets and ports; the default port is 80 for both.
    let (origin, _) =
        Origin::parse_url(&format!("http://{hostport}")).map_err(|_| ProxyUrlError::InvalidUrl)?;
    let proxy = Proxy::new(&origin.host, origin.port);
    let Some(userinfo) = userinfo else {
        return Ok(proxy);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = basic::percent_decode(user)?;
    let password = basic::percent_decode(password)?;
    Ok(Proxy {
        authorization: Some(basic::authorization(&user, &password)),
        ..proxy
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let cases: [(&str, &str, u16, Option<&str>); 9] = [
            ("http://p", "p", 80, None),
            ("HTTP://p:3128/", "p", 3128, None),
            ("p:8080", "p", 8080, None),
            ("http://[::1]:3128", "::1", 3128, None),
            ("http://u:pw@p:1", "p", 1, Some("Basic dTpwdw==")),
            ("http://u@p", "p", 80, Some("Basic dTo=")),
            // Percent-decoded: "a@b" and "c:d/e".
            (
                "http://a%40b:c%3Ad%2Fe@p",
                "p",
                80,
                Some("Basic YUBiOmM6ZC9l"),
            ),
            // The last `@` ends the user info.
            ("http://u:p@ss@p", "p", 80, Some("Basic dTpwQHNz")),
            ("http://127.0.0.1:9", "127.0.0.1", 9, None),
        ];
        for (url, host, port, auth) in cases {
            let proxy = parse(url).expect(url);
            assert_eq!((proxy.host(), proxy.port()), (host, port), "{url}");
            assert_eq!(
                proxy.authorization().map(|v| v.to_str().expect("ascii")),
                auth,
                "{url}"
            );
        }
    }

    #[test]
    fn unsupported_and_bad_proxy_urls() {
        for url in [
            "https://p:443",
            "socks5://p:1080",
            "socks5h://p",
            "socks4://p",
            "ftp://p",
        ] {
            assert_eq!(parse(url), Err(ProxyUrlError::UnsupportedScheme), "{url}");
        }
        for url in [
            "",
            "http://",
            "http://:80",
            "http://p:x",
            "http://p:65536",
            "http://[::1",
            "http://p/path",
            "http://p?q",
            // Blank, spaced or control-character hosts: the origin's rules.
            "http:// :80",
            "http://a b:80",
            "http://p\n",
            "http://[p]:80",
        ] {
            assert_eq!(parse(url), Err(ProxyUrlError::InvalidUrl), "{url}");
        }
        assert_eq!(
            parse("http://u:%zz@p"),
            Err(ProxyUrlError::InvalidCredentials)
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let proxy = parse("http://user:hunter2@p").expect("valid");
        let shown = format!("{proxy:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("dXNlcjpodW50ZXIy"),
            "{shown}"
        );
        assert!(shown.contains("credentials: true"), "{shown}");
    }
}
