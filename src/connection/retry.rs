//! Resending what a connection left unanswered: the policy ([`Retry`]) and a pipelined batch
//! that applies it ([`HttpConnection::send_batch`]).
//!
//! The rule it rests on: when a connection ends, the requests it lists as unanswered are
//! exactly the ones sent after the last response that started, oldest first (the server
//! never acted on them). A batch that reads responses in order therefore resends from the
//! first unread request.

use std::time::Duration;

use http::{HeaderMap, Method};

use super::{HttpConnection, Response};
use crate::error::Error;
use crate::io::Park;
use crate::proto::Body;

/// When to resend requests a failed connection left unanswered, and how long to wait.
///
/// A resend is allowed when the error [is temporary](Error::is_temporary) and every request
/// to resend is idempotent (`GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`, `TRACE`) unless
/// [`non_idempotent`](Self::non_idempotent) is set. A connection that ends after answering
/// something (a server's `keepalive_requests` limit, say) is resent at once; only failures
/// with no response in between count against [`attempts`](Self::attempts) and wait, for
/// `backoff`, doubling up to `max_backoff`.
///
/// ```
/// use std::time::Duration;
/// use dugong::Retry;
///
/// let retry = Retry::default().attempts(5).backoff(Duration::from_millis(50), Duration::from_secs(2));
/// assert_eq!(retry.delay(0), Duration::from_millis(50));
/// assert_eq!(retry.delay(3), Duration::from_millis(400));
/// assert_eq!(retry.delay(10), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retry {
    /// Failures in a row (with no response between them) that are retried.
    pub attempts: u32,
    /// The wait before the first retry of a failure in a row.
    pub backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
    /// Whether requests with non-idempotent methods (`POST`, `PATCH`, ...) are resent too.
    pub non_idempotent: bool,
}

impl Default for Retry {
    /// 3 attempts, 100 ms doubling up to 5 s, idempotent requests only.
    fn default() -> Self {
        Retry {
            attempts: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            non_idempotent: false,
        }
    }
}

impl Retry {
    /// No retries: every error is returned.
    pub fn never() -> Self {
        Retry {
            attempts: 0,
            ..Retry::default()
        }
    }

    /// Failures in a row that are retried.
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n;
        self
    }

    /// The first wait and the longest.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max;
        self
    }

    /// Resend non-idempotent requests too (only if the server acting twice does no harm).
    pub fn non_idempotent(mut self, on: bool) -> Self {
        self.non_idempotent = on;
        self
    }

    /// The wait before retry number `attempt` (from 0) of a failure in a row.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }

    /// A run of resends under this policy: it keeps the count of failures in a row, for
    /// callers that drive their own loop (as [`send_batch`](HttpConnection::send_batch)
    /// does with it).
    pub fn run(&self) -> RetryRun<'_> {
        RetryRun {
            retry: self,
            failures: 0,
            answered_at_failure: 0,
        }
    }

    /// Whether `e` may be retried by resending `methods` (the requests it left unanswered,
    /// or the one that failed to go out): it is temporary, it did not cut a response off
    /// inside its body (the server acted on that request, and its reader saw part of the
    /// body), and the methods may be sent twice.
    pub fn allows<'m>(&self, e: &Error, methods: impl IntoIterator<Item = &'m Method>) -> bool {
        e.is_temporary()
            && !cut_in_body(e)
            && (self.non_idempotent || methods.into_iter().all(Method::is_idempotent))
    }
}

/// Where a run of resends stands (see [`Retry::run`]): how many failures came in a row with
/// nothing answered between them.
///
/// ```
/// use std::time::Duration;
/// use dugong::Retry;
///
/// let retry = Retry::default().attempts(2).backoff(Duration::from_millis(10), Duration::from_secs(1));
/// let mut run = retry.run();
/// // Failures with nothing answered: a wait each, doubling, until the attempts are used up.
/// assert_eq!(run.wait_after_failure(0), Some(Duration::from_millis(10)));
/// assert_eq!(run.wait_after_failure(0), Some(Duration::from_millis(20)));
/// assert_eq!(run.wait_after_failure(0), None);
/// // A connection that answered 5 and then ended: resent at once, and the count starts over.
/// let mut run = retry.run();
/// assert_eq!(run.wait_after_failure(5), Some(Duration::ZERO));
/// assert_eq!(run.wait_after_failure(5), Some(Duration::from_millis(10)));
/// ```
#[derive(Debug, Clone)]
pub struct RetryRun<'r> {
    retry: &'r Retry,
    failures: u32,
    answered_at_failure: usize,
}

impl RetryRun<'_> {
    /// After a failure the policy [allows](Retry::allows) to resend, with `answered` responses
    /// handed over in the run so far: how long to wait before resending, or `None` to give
    /// up. A connection that answered something since the last failure and then ended (a
    /// server's `keepalive_requests`, an idle timeout) is resent at once and starts the count
    /// over; a failure with nothing answered since waits [`Retry::delay`] and counts against
    /// [`Retry::attempts`]. With no attempts, nothing is resent.
    pub fn wait_after_failure(&mut self, answered: usize) -> Option<Duration> {
        if self.retry.attempts == 0 {
            return None;
        }
        let wait = if answered == self.answered_at_failure {
            if self.failures >= self.retry.attempts {
                return None;
            }
            self.failures += 1;
            self.retry.delay(self.failures - 1)
        } else {
            self.failures = 0;
            Duration::ZERO
        };
        self.answered_at_failure = answered;
        Some(wait)
    }
}

/// One request of a batch: what [`HttpConnection::send_request`] takes, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// The method.
    pub method: Method,
    /// The request target (path and query).
    pub target: String,
    /// Header fields (no framing headers: the body sets them).
    pub headers: HeaderMap,
    /// The body, sent with a `Content-Length` (none for an empty body on a method without
    /// one).
    pub body: Vec<u8>,
}

impl BatchRequest {
    /// A `GET` of `target` without headers.
    pub fn get(target: impl Into<String>) -> Self {
        BatchRequest {
            method: Method::GET,
            target: target.into(),
            headers: HeaderMap::new(),
            body: Vec::new(),
        }
    }
}

impl<P: Park> HttpConnection<P> {
    /// Sends `requests` in order, pipelined up to `depth` unanswered at a time, and hands
    /// each response to `each` (with the request's index) in order; `each` reads the body
    /// on this connection (whatever it leaves unread is discarded). When the connection ends
    /// with requests unanswered — or a send or connect fails — they are resent on a new
    /// connection as `retry` allows, so every request's response is handed over exactly once.
    ///
    /// A response cut off inside its body is not resent (the server acted on its request,
    /// and `each` has seen part of it): its error is returned.
    ///
    /// ```
    /// # let server = dugong_harness::LoopbackServer::start();
    /// # let port = server.port();
    /// use dugong::{BatchRequest, HttpConnection, Retry};
    ///
    /// let conn = HttpConnection::new("127.0.0.1", port)?;
    /// let requests: Vec<_> = (0..100).map(|i| BatchRequest::get(format!("/bytes/{i}"))).collect();
    /// let mut total = 0;
    /// conn.send_batch(&requests, 16, &Retry::default(), |i, _response, conn| {
    ///     let body = conn.read_all()?;
    ///     assert_eq!(body.len(), i);
    ///     total += body.len();
    ///     Ok(())
    /// })?;
    /// assert_eq!(total, (0..100).sum());
    /// # Ok::<(), dugong::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first error `retry` does not allow (or that exhausts its attempts); any error
    /// `each` returns, and any error discarding what it left of its body — these are never
    /// resent, even when temporary, since that response was handed over. Requests after the
    /// failure were not handed over.
    pub fn send_batch(
        &self,
        requests: &[BatchRequest],
        depth: usize,
        retry: &Retry,
        mut each: impl FnMut(usize, Response, &Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let depth = depth.max(1);
        let (mut sent, mut done) = (0, 0);
        let mut run = retry.run();
        while done < requests.len() {
            let sending = sent < requests.len() && sent - done < depth;
            let step = if sending {
                let r = &requests[sent];
                let body = if r.body.is_empty() && !matches!(r.method, Method::POST | Method::PUT) {
                    Body::Empty
                } else {
                    Body::Bytes(&r.body)
                };
                self.send_request(&r.method, &r.target, &r.headers, body)
                    .map(|()| sent += 1)
            } else {
                match self.read_response() {
                    Ok(response) => {
                        // Handed over: the request is answered, and any error from here on
                        // (`each`'s own, or the rest of the body) is returned, never resent.
                        each(done, response, self)?;
                        if self.has_active_response() {
                            self.discard()?;
                        }
                        done += 1;
                        continue;
                    }
                    Err(e) => Err(e),
                }
            };
            let Err(e) = step else { continue };
            // Everything sent and not handed over, and the request that failed to go out.
            let pending = requests[done..sent + usize::from(sending)]
                .iter()
                .map(|r| &r.method);
            if !retry.allows(&e, pending) {
                return Err(e);
            }
            let Some(wait) = run.wait_after_failure(done) else {
                return Err(e);
            };
            if !wait.is_zero() {
                self.park.sleep(wait);
            }
            // The connection is closed or poisoned: the next send reconnects.
            self.disconnect();
            sent = done;
        }
        Ok(())
    }
}

/// Whether `e` cut a response off inside its body: a close there, or a timeout reading it.
fn cut_in_body(e: &Error) -> bool {
    use crate::{ClosePhase, Operation, PoisonCause};
    matches!(
        e,
        Error::ConnectionClosed {
            phase: ClosePhase::InBody,
            ..
        } | Error::Poisoned {
            cause: PoisonCause::Closed(ClosePhase::InBody)
                | PoisonCause::Timeout(Operation::ReadBody),
            ..
        } | Error::Timeout {
            operation: Operation::ReadBody,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ClosePhase, Operation};

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Retry::default().backoff(Duration::from_millis(10), Duration::from_millis(100));
        let waits: Vec<_> = (0..6).map(|a| r.delay(a).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 100, 100]);
        assert_eq!(r.delay(u32::MAX), Duration::from_millis(100));
    }

    #[test]
    fn only_temporary_errors_of_idempotent_requests_are_retried() {
        let closed = Error::ConnectionClosed {
            phase: ClosePhase::Announced,
            unanswered: Vec::new(),
        };
        let timeout = Error::Timeout {
            operation: Operation::ReadResponse,
            after: Duration::from_secs(1),
        };
        let r = Retry::default();
        assert!(r.allows(&closed, [&Method::GET, &Method::PUT]));
        assert!(r.allows(&timeout, [&Method::DELETE]));
        assert!(!r.allows(&closed, [&Method::GET, &Method::POST]));
        assert!(r
            .clone()
            .non_idempotent(true)
            .allows(&closed, [&Method::POST]));
        assert!(!r.allows(&Error::Cancelled, [&Method::GET]));
        let cut = Error::ConnectionClosed {
            phase: ClosePhase::InBody,
            unanswered: Vec::new(),
        };
        let body_timeout = Error::Timeout {
            operation: Operation::ReadBody,
            after: Duration::from_secs(1),
        };
        assert!(!r.allows(&cut, [&Method::GET]));
        assert!(!r.allows(&body_timeout, [&Method::GET]));
    }
}
