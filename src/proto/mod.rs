//! The sans-IO protocol core: bytes in, meaning out, and back.
//!
//! Owns request encoding and request body framing, response head parsing, body framing and decoding, and the pipeline
//! FIFO. It never touches a socket, a clock or a coroutine, which is what makes it fuzzable and
//! testable at every split point. Everything above it (`io`, `connection`) feeds it bytes.

mod body;
mod chunked;
mod connect;
mod error;
mod field_name;
mod field_value;
mod framing;
mod head;
mod limits;
mod origin;
mod pipeline;
mod redact;
mod request;
mod request_body;
mod response;

pub use body::{BodyDecoder, Decoded};
pub(crate) use connect::{connect_authority, encode_connect_head, ConnectReader, ConnectStep};
pub use error::{ProtocolError, RequestError, StateError};
pub use framing::{BodyKind, Framing};
pub use head::ResponseHead;
pub use limits::Limits;
pub use origin::{Origin, Scheme};
pub use pipeline::{InFlight, Pipeline};
pub(crate) use redact::{is_secret, Redactor, REDACTED};
pub(crate) use request::{encode_head, Head};
pub use request::{encode_request_head, host_header, Body, RequestFraming};
pub use request_body::{BodyEncoder, Frame};
pub use response::{HeadStep, ResponseReader};

#[cfg(test)]
mod stream_tests;
