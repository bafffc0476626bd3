//! dugong: an HTTP/1.1 client that pipelines.

mod connection;
mod error;
mod io;
pub mod proto;

pub use connection::{Config, HttpConnection, Response};
pub use error::{ClosePhase, Error, Operation, PoisonCause, StateError};
pub use proto::{Body, InFlight, ProtocolError, RequestError};
