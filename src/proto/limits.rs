//! Bounds on what a server can make the protocol core buffer or allocate.

/// Limits on response heads and trailers. Every one exists so a hostile or broken server cannot
/// make the client buffer or allocate without bound; each default is far above what real
/// servers send (nginx answers with under 1 KiB of head and a dozen fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum bytes of one response head, status line through blank line. Default 64 KiB.
    pub max_head_bytes: usize,
    /// Maximum header fields in one head (and in one trailer section). Default 100.
    pub max_headers: usize,
    /// Maximum interim (1xx) responses before a final one. Default 8.
    pub max_interim: usize,
    /// Maximum bytes of a chunked body's trailer section. Default 16 KiB.
    pub max_trailer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_interim: 8,
            max_trailer_bytes: 16 * 1024,
        }
    }
}
