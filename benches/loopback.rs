//! Per-request cost on one loopback connection against the embedded server, blocking sends
//! against cofunctions, and the cost of a coroutine with and without a pooled stack.
//!
//! Each iteration is one 100-byte GET; at depth D the client keeps D requests in flight
//! (a sliding window), so the reported time is per request, pipelining included. Pin the
//! process to one CPU (`taskset -c 0`) to compare runs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dugong::{Body, HttpConnection};
use dugong_harness::LoopbackServer;
use http::{HeaderMap, Method};

/// How a request is sent.
#[derive(Clone, Copy)]
enum Path {
    Blocking,
    Cofun,
}

fn get(conn: &HttpConnection, headers: &HeaderMap, path: Path) {
    let target = "/bytes/100";
    match path {
        Path::Blocking => conn
            .send_request(&Method::GET, target, headers, Body::Empty)
            .expect("send"),
        Path::Cofun => {
            let cofun = conn.send_request_cofun(&Method::GET, target, headers, Body::Empty);
            // The loop body reads nothing: the window below does the reading, as for the
            // blocking path, so this measures what the cofunction adds per request.
            for step in cofun.expect("start") {
                step.expect("send");
            }
        }
    }
}

fn read(conn: &HttpConnection, buf: &mut [u8]) {
    if !conn.has_active_response() {
        conn.read_response().expect("head");
    }
    while conn.read(buf).expect("body") > 0 {}
}

fn per_request(c: &mut Criterion) {
    let server = LoopbackServer::start();
    let headers = HeaderMap::new();
    for (name, path) in [
        ("blocking_get_100B", Path::Blocking),
        ("cofun_get_100B", Path::Cofun),
    ] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        for depth in [1usize, 4, 16, 64] {
            group.bench_with_input(BenchmarkId::from_parameter(depth), &depth, |b, &depth| {
                let conn = HttpConnection::new("127.0.0.1", server.port()).expect("conn");
                let mut buf = [0u8; 4096];
                for _ in 0..depth - 1 {
                    get(&conn, &headers, path);
                }
                b.iter(|| {
                    get(&conn, &headers, path);
                    // Keep `depth` in flight: read until one fewer is pending.
                    read(&conn, &mut buf);
                });
                while conn.response_pending() {
                    read(&conn, &mut buf);
                }
            });
        }
        group.finish();
    }
}

/// What a cofunction's coroutine costs to create and run to completion, with a fresh stack
/// each time and with a reused one (what the connection's stack pool does).
fn coroutine_creation(c: &mut Criterion) {
    use corosensei::stack::DefaultStack;
    use corosensei::{Coroutine, CoroutineResult};
    const SIZE: usize = 256 * 1024;
    let mut group = c.benchmark_group("coroutine");
    group.bench_function("fresh_stack", |b| {
        b.iter(|| {
            let stack = DefaultStack::new(SIZE).expect("stack");
            let mut co = Coroutine::with_stack(stack, |_: &corosensei::Yielder<(), ()>, ()| 1u32);
            assert!(matches!(co.resume(()), CoroutineResult::Return(1)));
        });
    });
    group.bench_function("pooled_stack", |b| {
        let mut spare = Some(DefaultStack::new(SIZE).expect("stack"));
        b.iter(|| {
            let stack = spare.take().expect("pooled");
            let mut co = Coroutine::with_stack(stack, |_: &corosensei::Yielder<(), ()>, ()| 1u32);
            assert!(matches!(co.resume(()), CoroutineResult::Return(1)));
            spare = Some(co.into_stack());
        });
    });
    group.finish();
}

criterion_group!(benches, per_request, coroutine_creation);
criterion_main!(benches);
