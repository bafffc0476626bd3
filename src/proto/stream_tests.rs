//! Whole-stream tests of the protocol core: every split point, and random pipelined streams.

use http::Method;
use proptest::prelude::*;

use super::{HeadStep, Limits, ProtocolError, ResponseReader};

/// What a response decoded to, as far as it got.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Progress {
    status: Option<u16>,
    body: Vec<u8>,
    done: bool,
}

/// Advances one response as far as the buffered bytes allow, consuming them from `buf`, the
/// way the connection driver does. `max` bounds each body step.
fn advance(
    reader: &mut ResponseReader,
    buf: &mut Vec<u8>,
    method: &Method,
    p: &mut Progress,
    max: usize,
) -> Result<(), ProtocolError> {
    while !p.done {
        if p.status.is_none() {
            match reader.read_head(buf, method)? {
                HeadStep::Partial => return Ok(()),
                HeadStep::Interim { len, .. } => {
                    buf.drain(..len);
                }
                HeadStep::Final { head, len, .. } => {
                    buf.drain(..len);
                    p.status = Some(head.status.as_u16());
                    p.done = !reader.has_body();
                }
            }
        } else {
            let step = reader.read_body(buf, max)?;
            p.body.extend_from_slice(&buf[step.data.clone()]);
            buf.drain(..step.consumed);
            p.done = step.complete;
            if step.consumed == 0 && !step.complete {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Feeds `pieces` in order and decodes one response per method, in order.
fn decode_stream(
    pieces: &[&[u8]],
    methods: &[Method],
    max: usize,
) -> Result<Vec<Progress>, ProtocolError> {
    let mut reader = ResponseReader::new(Limits::default());
    let mut buf = Vec::new();
    let mut out = vec![Progress::default()];
    for piece in pieces {
        buf.extend_from_slice(piece);
        while out.len() <= methods.len() {
            let i = out.len() - 1;
            advance(&mut reader, &mut buf, &methods[i], &mut out[i], max)?;
            if !out[i].done {
                break;
            }
            out.push(Progress::default());
        }
    }
    if out.last() == Some(&Progress::default()) {
        out.pop();
    }
    Ok(out)
}

/// (request method, wire bytes, status, body) for self-delimited responses.
fn fixtures() -> Vec<(Method, &'static [u8], u16, &'static [u8])> {
    vec![
        (Method::GET, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, b"hello"),
        (Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
        (Method::HEAD, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 200, b""),
        (Method::GET, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", 304, b""),
        (
            Method::GET,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n2\r\nde\r\n0\r\nX: y\r\n\r\n",
            200,
            b"abcde",
        ),
        (Method::GET, b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n1\nz\n0\n\n", 200, b"z"),
        (
            Method::PUT,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            201,
            b"ok",
        ),
        (Method::GET, b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n!", 200, b"!"),
    ]
}

#[test]
fn every_prefix_is_partial_and_every_split_resumes() {
    for (method, wire, status, body) in fixtures() {
        let want = Progress {
            status: Some(status),
            body: body.to_vec(),
            done: true,
        };
        let methods = [method.clone()];
        for split in 0..wire.len() {
            let prefix = decode_stream(&[&wire[..split]], &methods, usize::MAX).expect("valid");
            assert!(
                prefix.iter().all(|p| !p.done),
                "{:?} complete after {split} of {} bytes",
                String::from_utf8_lossy(wire),
                wire.len()
            );
            let resumed =
                decode_stream(&[&wire[..split], &wire[split..]], &methods, 3).expect("valid");
            assert_eq!(resumed, vec![want.clone()], "split at {split}");
        }
    }
}

#[test]
fn pipelined_fixtures_decode_in_order() {
    let all = fixtures();
    let wire: Vec<u8> = all.iter().flat_map(|f| f.1.iter().copied()).collect();
    let methods: Vec<Method> = all.iter().map(|f| f.0.clone()).collect();
    let got = decode_stream(&[&wire], &methods, usize::MAX).expect("valid");
    let want: Vec<Progress> = all
        .iter()
        .map(|f| Progress {
            status: Some(f.2),
            body: f.3.to_vec(),
            done: true,
        })
        .collect();
    assert_eq!(got, want);
}

/// One random self-delimited response: its request method, wire bytes and expected result.
fn response() -> impl Strategy<Value = (Method, Vec<u8>, Progress)> {
    let body = proptest::collection::vec(any::<u8>(), 0..300);
    let chunk_sizes = proptest::collection::vec(1usize..64, 0..10);
    (0u8..5, body, chunk_sizes, any::<bool>(), any::<bool>()).prop_map(
        |(shape, body, sizes, interim, trailer)| {
            let mut wire = Vec::new();
            if interim {
                wire.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            let (method, status, delivered) = match shape {
                0 => {
                    wire.extend_from_slice(
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                            .as_bytes(),
                    );
                    wire.extend_from_slice(&body);
                    (Method::GET, 200, body)
                }
                1 => {
                    wire.extend_from_slice(
                        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n",
                    );
                    let mut rest = &body[..];
                    for size in sizes.iter().copied().chain(std::iter::repeat(64)) {
                        if rest.is_empty() {
                            break;
                        }
                        let n = size.min(rest.len());
                        wire.extend_from_slice(format!("{n:X};ext=1\r\n").as_bytes());
                        wire.extend_from_slice(&rest[..n]);
                        wire.extend_from_slice(b"\r\n");
                        rest = &rest[n..];
                    }
                    wire.extend_from_slice(if trailer {
                        &b"0\r\nT: v\r\n\r\n"[..]
                    } else {
                        b"0\r\n\r\n"
                    });
                    (Method::GET, 404, body)
                }
                2 => {
                    wire.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
                    (Method::DELETE, 204, Vec::new())
                }
                3 => {
                    wire.extend_from_slice(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            body.len() + 1
                        )
                        .as_bytes(),
                    );
                    (Method::HEAD, 200, Vec::new())
                }
                _ => {
                    wire.extend_from_slice(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n");
                    (Method::GET, 304, Vec::new())
                }
            };
            (
                method,
                wire,
                Progress {
                    status: Some(status),
                    body: delivered,
                    done: true,
                },
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random pipelined responses, concatenated and fed in random pieces, decode exactly as
    /// when fed in one piece, and as generated.
    #[test]
    fn random_pipelined_streams_decode_identically(
        responses in proptest::collection::vec(response(), 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        max in 1usize..100,
    ) {
        let wire: Vec<u8> = responses.iter().flat_map(|r| r.1.iter().copied()).collect();
        let methods: Vec<Method> = responses.iter().map(|r| r.0.clone()).collect();
        let want: Vec<Progress> = responses.iter().map(|r| r.2.clone()).collect();

        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for p in points {
            pieces.push(&wire[start..p]);
            start = p;
        }
        pieces.push(&wire[start..]);

        let whole = decode_stream(&[&wire], &methods, usize::MAX).expect("valid stream");
        let split = decode_stream(&pieces, &methods, max).expect("valid stream");
        prop_assert_eq!(&whole, &want);
        prop_assert_eq!(&split, &want);
    }
}
