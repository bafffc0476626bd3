//! Throughput of the sans-IO core: response heads and chunked bodies, no sockets.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dugong::proto::{HeadStep, Limits, ResponseReader};
use http::Method;

/// A typical nginx response head.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 15:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 100\r\nLast-Modified: Tue, 24 Nov 2026 10:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"6565f000-64\"\r\nAccept-Ranges: bytes\r\n\r\n";

fn heads(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(HEAD.len() as u64));
    group.bench_function("response_head", |b| {
        let mut reader = ResponseReader::new(Limits::default());
        b.iter(|| {
            let step = reader
                .read_head(black_box(HEAD), &Method::HEAD)
                .expect("valid");
            assert!(matches!(step, HeadStep::Final { .. }));
        });
    });

    let mut body = Vec::new();
    for _ in 0..256 {
        body.extend_from_slice(b"1000\r\n");
        body.extend(std::iter::repeat_n(b'x', 0x1000));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("chunked_1MiB", |b| {
        let mut reader = ResponseReader::new(Limits::default());
        b.iter(|| {
            reader.read_head(head, &Method::GET).expect("head");
            let mut pos = 0;
            let mut data = 0;
            loop {
                let step = reader.read_body(&body[pos..], 64 * 1024).expect("valid");
                data += step.data.len();
                pos += step.consumed;
                if step.complete {
                    break;
                }
            }
            assert_eq!(data, 256 * 0x1000);
        });
    });
    group.finish();
}

criterion_group!(benches, heads);
criterion_main!(benches);
