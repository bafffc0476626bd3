//! Coroutine stacks, reused: a fresh one costs an mmap and a guard page (~9 µs), a pooled one
//! nothing.

use corosensei::stack::DefaultStack;

/// Stacks kept for reuse, all of one size. The memory of a stack is reserved, not committed,
/// so the size costs address space only.
pub(crate) struct StackPool {
    size: usize,
    /// At most this many spares are kept.
    keep: usize,
    spares: Vec<DefaultStack>,
}

impl std::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackPool")
            .field("size", &self.size)
            .field("spares", &self.spares.len())
            .finish()
    }
}

impl StackPool {
    /// A pool of `size`-byte stacks that keeps at most `keep` spares.
    pub(crate) fn new(size: usize, keep: usize) -> Self {
        StackPool {
            size,
            keep,
            spares: Vec::new(),
        }
    }

    /// A stack from the pool, or a new one.
    pub(crate) fn take(&mut self) -> std::io::Result<DefaultStack> {
        match self.spares.pop() {
            Some(stack) => Ok(stack),
            None => DefaultStack::new(self.size),
        }
    }

    /// Returns a stack whose coroutine has finished.
    pub(crate) fn put(&mut self, stack: DefaultStack) {
        if self.spares.len() < self.keep {
            self.spares.push(stack);
        }
    }
}
