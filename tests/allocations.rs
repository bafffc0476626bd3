//! Reading whole bodies costs memory in proportion to the body, not a fixed 64 KiB scratch
//! buffer per call: counted with an allocator that tallies this thread's allocations.

#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use http::{HeaderMap, Method};
use support::{connection, LoopbackServer};

struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call forwards to the system allocator unchanged; the thread-local counter
// has no destructor and is only read and written with `Cell` operations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.with(|a| a.set(a.get() + new_size));
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes this thread allocated while `f` ran.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let out = f();
    (out, ALLOCATED.with(Cell::get) - before)
}

#[test]
fn read_all_and_discard_of_small_bodies_allocate_little() {
    let server = LoopbackServer::start();
    let conn = connection(server.port());
    for _ in 0..2 {
        conn.send_request(
            &Method::GET,
            "/bytes/10",
            &HeaderMap::new(),
            dugong::Body::Empty,
        )
        .expect("send");
    }
    conn.read_response().expect("head");
    let (body, bytes) = allocated_by(|| conn.read_all().expect("body"));
    assert_eq!(body.len(), 10);
    assert!(bytes < 1024, "read_all of 10 bytes allocated {bytes} bytes");
    conn.read_response().expect("head");
    let (len, bytes) = allocated_by(|| conn.discard().expect("discard"));
    assert_eq!(len, 10);
    assert_eq!(bytes, 0, "discard allocates nothing");
}
