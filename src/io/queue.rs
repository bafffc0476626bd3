//! Write coalescing: small writes wait in a transport's queue and go out together in one
//! gathering send.
//!
//! The rule that keeps this from ever hanging a caller: **queued bytes go out before the
//! thread waits for anything.** Every receive on a transport sends its queue first, a wait on
//! a transport asks for writability too while its queue holds bytes, and every park (a
//! blocking `poll(2)`, a green runtime about to block in its poller) first flushes the queue
//! of every transport this thread queued on. So a caller can wait on a response, on another
//! connection, or on a timer, and the request it answers is already on the wire — or the
//! socket is full, and the wait includes writability.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use super::transport::Transport;

/// The most bytes a transport queues; a write that would pass it sends the queue and itself
/// at once.
pub(crate) const QUEUE_LIMIT: usize = 16 * 1024;

thread_local! {
    /// Transports this thread queued bytes on since it last flushed them.
    static DIRTY: RefCell<Vec<Weak<Transport>>> = const { RefCell::new(Vec::new()) };
}

/// Notes that `transport` holds queued bytes this thread must flush before it waits.
pub(crate) fn mark_dirty(transport: &Arc<Transport>) {
    DIRTY.with(|dirty| dirty.borrow_mut().push(Arc::downgrade(transport)));
}

/// Sends what every transport this thread queued on holds, as far as each socket takes it
/// without waiting. Errors are left for the transport's next send or receive to report.
pub(crate) fn flush_thread() {
    let dirty = DIRTY.with(|dirty| std::mem::take(&mut *dirty.borrow_mut()));
    for transport in dirty.iter().filter_map(Weak::upgrade) {
        if !matches!(transport.flush(), Ok(true)) {
            // Still holding bytes (a full socket): flushed again before the next wait.
            mark_dirty(&transport);
        }
    }
}
