//! Per-request cost on one loopback connection against the embedded server.
//!
//! Each iteration is one 100-byte GET; at depth D the client keeps D requests in flight
//! (a sliding window), so the reported time is per request, pipelining included.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dugong::{Body, HttpConnection};
use dugong_harness::LoopbackServer;
use http::{HeaderMap, Method};

fn get(conn: &HttpConnection, headers: &HeaderMap) {
    conn.send_request(&Method::GET, "/bytes/100", headers, Body::Empty)
        .expect("send");
}

fn read(conn: &HttpConnection, buf: &mut [u8]) {
    conn.read_response().expect("head");
    while conn.read(buf).expect("body") > 0 {}
}

fn blocking(c: &mut Criterion) {
    let server = LoopbackServer::start();
    let headers = HeaderMap::new();
    let mut group = c.benchmark_group("blocking_get_100B");
    group.throughput(Throughput::Elements(1));
    for depth in [1usize, 4, 16, 64] {
        group.bench_with_input(BenchmarkId::from_parameter(depth), &depth, |b, &depth| {
            let conn = HttpConnection::new("127.0.0.1", server.port()).expect("conn");
            let mut buf = [0u8; 4096];
            for _ in 0..depth - 1 {
                get(&conn, &headers);
            }
            b.iter(|| {
                get(&conn, &headers);
                read(&conn, &mut buf);
            });
            while conn.response_pending() {
                read(&conn, &mut buf);
            }
        });
    }
    group.finish();
}

criterion_group!(benches, blocking);
criterion_main!(benches);
