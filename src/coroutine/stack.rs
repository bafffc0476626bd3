//! Coroutine stacks, reused: a fresh one costs an mmap and a guard page (~9 µs), a pooled one
//! nothing.

use corosensei::stack::DefaultStack;

/// Stack size: the coroutine runs only the send loop and a poll, but a panic inside it
/// formats a message and may capture a backtrace on this stack. The memory is reserved, not
/// committed, so the size costs address space only.
const STACK_SIZE: usize = 256 * 1024;

/// Stacks kept for reuse. One connection runs one cofunction at a time, so one spare is
/// enough.
#[derive(Default)]
pub(crate) struct StackPool {
    spare: Option<DefaultStack>,
}

impl std::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackPool")
            .field("spare", &self.spare.is_some())
            .finish()
    }
}

impl StackPool {
    /// A stack from the pool, or a new one.
    pub(crate) fn take(&mut self) -> std::io::Result<DefaultStack> {
        match self.spare.take() {
            Some(stack) => Ok(stack),
            None => DefaultStack::new(STACK_SIZE),
        }
    }

    /// Returns a stack whose coroutine has finished.
    pub(crate) fn put(&mut self, stack: DefaultStack) {
        self.spare = Some(stack);
    }
}
