//! Helpers for `tests/faults.rs`: how a scripted server ends a connection, checks of the
//! errors (variant, data and message) a failed exchange gives, and the upload loop of every
//! send path.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::time::Duration;

use dugong::{ClosePhase, CoStep, Error, InFlight, Interest, PoisonCause, ProtocolError, Response};

use crate::support::{poll_fds, Client, SendPath, Step};

/// How the server ends a connection in the middle of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// FIN after everything written.
    Close,
    /// RST (SO_LINGER 0), after a pause that lets the bytes written before it arrive.
    Reset,
}

impl End {
    pub(crate) const ALL: [End; 2] = [End::Close, End::Reset];

    /// The script steps that end the connection this way.
    pub(crate) fn steps(self) -> Vec<Step> {
        match self {
            End::Close => vec![Step::Close],
            // Without the pause a reset can overtake bytes still in the server's send queue,
            // which Linux then discards: the test would no longer know what was delivered.
            End::Reset => vec![Step::Sleep(Duration::from_millis(100)), Step::Reset],
        }
    }
}

/// `error` and its sources, joined by ": ", for checks that the whole report names the fault.
pub(crate) fn full_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Checks that `error.to_string()` contains every phrase.
#[track_caller]
pub(crate) fn assert_says(error: &Error, phrases: &[&str], what: &str) {
    let text = error.to_string();
    for phrase in phrases {
        assert!(
            text.contains(phrase),
            "{what}: message {text:?} does not contain {phrase:?}"
        );
    }
}

/// The phrase the message of an error listing `unanswered` must contain (nothing when empty).
pub(crate) fn unanswered_phrase(unanswered: &[InFlight]) -> String {
    match unanswered {
        [] => String::new(),
        [one] => format!("with 1 request unanswered ({one})"),
        [first, ..] => format!(
            "with {} requests unanswered (first: {first})",
            unanswered.len()
        ),
    }
}

/// Checks that `got` is `ConnectionClosed { phase, unanswered }` and says so.
#[track_caller]
pub(crate) fn assert_closed(got: &Error, phase: ClosePhase, unanswered: &[InFlight], what: &str) {
    match got {
        Error::ConnectionClosed {
            phase: p,
            unanswered: u,
        } if *p == phase && u == unanswered => {}
        other => panic!(
            "{what}: expected ConnectionClosed {{ {phase:?}, {unanswered:?} }}, got {other:?}"
        ),
    }
    let note = unanswered_phrase(unanswered);
    assert_says(
        got,
        &["connection closed by the server", &phase.to_string(), &note],
        what,
    );
    if unanswered.is_empty() {
        assert!(
            !got.to_string().contains("unanswered"),
            "{what}: {got} lists requests"
        );
    }
}

/// Checks that `got` is `Protocol(want)`, with a message saying the response was invalid and
/// the protocol error (its source) naming the fault with `phrase`.
#[track_caller]
pub(crate) fn assert_protocol(got: &Error, want: ProtocolError, phrase: &str, what: &str) {
    match got {
        Error::Protocol(p) if *p == want => {}
        other => panic!("{what}: expected Protocol({want:?}), got {other:?}"),
    }
    assert_says(got, &["invalid response"], what);
    let whole = full_message(got);
    assert!(
        whole.contains(phrase),
        "{what}: {whole:?} does not contain {phrase:?}"
    );
}

/// Checks that `got` is `Poisoned { cause, unanswered }` and says so.
#[track_caller]
pub(crate) fn assert_poisoned(
    got: &Error,
    cause: PoisonCause,
    unanswered: &[InFlight],
    what: &str,
) {
    match got {
        Error::Poisoned {
            cause: c,
            unanswered: u,
        } if *c == cause && u == unanswered => {}
        other => panic!("{what}: expected Poisoned {{ {cause:?}, {unanswered:?} }}, got {other:?}"),
    }
    let note = unanswered_phrase(unanswered);
    assert_says(
        got,
        &["connection unusable after an earlier error", &note],
        what,
    );
    let whole = full_message(got);
    assert!(
        whole.contains(&cause.to_string()),
        "{what}: {whole:?} does not name the cause {cause}"
    );
}

/// Reads the active body with `read` into a small buffer until it ends or fails: every byte
/// delivered, and how it ended.
pub(crate) fn read_until_end(conn: &Client<'_>) -> (Vec<u8>, Result<(), Error>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 7];
    for _ in 0..100_000 {
        match conn.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
    panic!("read never ended the body");
}

/// `read_response`, calling again after timeouts (which lose nothing) up to `tries` times.
pub(crate) fn read_response_patiently(conn: &Client<'_>, tries: usize, what: &str) -> Response {
    for _ in 0..tries {
        match conn.read_response() {
            Ok(r) => return r,
            Err(Error::Timeout { .. }) => {}
            Err(e) => panic!("{what}: read_response: {e:?}"),
        }
    }
    panic!("{what}: no response after {tries} timeouts");
}

/// What the caller of [`upload`] decides at each chance to look at responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Go {
    /// Keep uploading.
    On,
    /// Stop uploading (the blocking loop stops writing; the cofunction is dropped).
    Stop,
}

/// A reader of `len` bytes of `u` that counts what it handed out.
#[derive(Debug)]
pub(crate) struct Source {
    inner: io::Take<io::Repeat>,
    pub(crate) handed_out: u64,
}

impl Source {
    pub(crate) fn new(len: u64) -> Source {
        Source {
            inner: io::repeat(b'u').take(len),
            handed_out: 0,
        }
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.handed_out += n as u64;
        Ok(n)
    }
}

/// How an [`upload`] ended.
#[derive(Debug)]
pub(crate) struct Uploaded {
    /// Body bytes handed to the library (written, or read by the cofunction from its source).
    pub(crate) handed_over: u64,
    /// The error that ended it, if any.
    pub(crate) error: Option<Error>,
    /// Whether `between` stopped it.
    pub(crate) stopped: bool,
}

/// Writes the `len`-byte body owed by the last request through the client's path:
///
/// - `Blocking`, `Green`: `write` in 256 KiB pieces, calling `between` before each piece;
/// - the cofunction paths: `sendfile_cofun` of a [`Source`], calling `between` in the loop
///   body whenever the cofunction yields (response data is available);
/// - `CoOps`: `co_write` of a [`Source`] through a poll loop that waits for writability or
///   readability, calling `between` whenever the write waits.
///
/// Ends at the first error, when `between` says [`Go::Stop`] (the cofunction or operation
/// is then dropped), or when the body is complete.
pub(crate) fn upload(
    conn: &Client<'_>,
    len: u64,
    mut between: impl FnMut(&Client<'_>) -> Go,
) -> Uploaded {
    const PIECE: usize = 256 * 1024;
    match conn.path() {
        SendPath::Blocking | SendPath::Green => {
            let piece = vec![b'u'; PIECE];
            let mut handed_over = 0u64;
            while handed_over < len {
                if between(conn) == Go::Stop {
                    return Uploaded {
                        handed_over,
                        error: None,
                        stopped: true,
                    };
                }
                let n = (len - handed_over).min(PIECE as u64) as usize;
                if let Err(e) = conn.write(&piece[..n]) {
                    return Uploaded {
                        handed_over,
                        error: Some(e),
                        stopped: false,
                    };
                }
                handed_over += n as u64;
            }
            Uploaded {
                handed_over,
                error: None,
                stopped: false,
            }
        }
        SendPath::Cofun | SendPath::CofunDeclining => {
            let plain = conn.plain().expect("a blocking connection");
            let mut source = Source::new(len);
            let mut error = None;
            let mut stopped = false;
            match plain.sendfile_cofun(&mut source) {
                Err(e) => error = Some(e),
                Ok(cofun) => {
                    for step in cofun {
                        match step {
                            Ok(()) => {
                                if between(conn) == Go::Stop {
                                    stopped = true;
                                    break;
                                }
                            }
                            Err(e) => {
                                error = Some(e);
                                break;
                            }
                        }
                    }
                }
            }
            Uploaded {
                handed_over: source.handed_out,
                error,
                stopped,
            }
        }
        SendPath::CoOps => {
            let plain = conn.plain().expect("a blocking connection");
            let mut source = Source::new(len);
            let mut error = None;
            let mut stopped = false;
            match plain.co_write(&mut source) {
                Err(e) => error = Some(e),
                Ok(mut op) => loop {
                    let fd = match op.step() {
                        CoStep::Done(result) => {
                            error = result.err();
                            break;
                        }
                        CoStep::Poll(need) => need.fd.as_raw_fd(),
                    };
                    if between(conn) == Go::Stop {
                        stopped = true;
                        break;
                    }
                    // Writable, or a response (or an end) to look at.
                    let fds = [(fd, Interest::Write), (fd, Interest::Read)];
                    assert!(poll_fds(&fds, Duration::from_secs(10)), "co_write stuck");
                },
            }
            Uploaded {
                handed_over: source.handed_out,
                error,
                stopped,
            }
        }
    }
}
