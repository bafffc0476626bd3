//! Reaching the server: name resolution bounded by the connect timeout (off the caller's
//! thread, so a green task parks instead of blocking its runtime), typed resolver errors,
//! and Happy Eyeballs across addresses — a blackholed first address costs 250 ms, a refused
//! one nothing, and the losing attempt is closed.
//!
//! Every address here is on 127.0.0.1; names come from a test resolver, so no DNS query
//! leaves the machine.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dugong::{Config, DnsError, Error, HttpConnection, Operation, Resolve};
use dugong_harness::LoopbackServer;
use http::{HeaderMap, Method};

/// The tests count this process's descriptors, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A name and what resolving it gives.
type Entry = (&'static str, Result<Vec<SocketAddr>, fn() -> DnsError>);

/// A resolver with a fixed answer per name, optionally slow.
#[derive(Debug, Clone)]
struct Table {
    answers: Vec<Entry>,
    delay: Duration,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Table {
    fn new(answers: Vec<Entry>) -> Self {
        Table {
            answers,
            delay: Duration::ZERO,
            asked: Arc::default(),
        }
    }

    fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl Resolve for Table {
    fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
        self.asked.lock().expect("lock").push(host.to_owned());
        std::thread::sleep(self.delay);
        match self.answers.iter().find(|(name, _)| *name == host) {
            Some((_, Ok(addrs))) => Ok(addrs
                .iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect()),
            Some((_, Err(make))) => Err(make()),
            None => Err(DnsError::NotFound),
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A port nothing listens on (connecting is refused at once).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A listening socket whose accept queue is full: the kernel drops further SYNs, so a
/// connect to it neither succeeds nor fails until the client gives up.
struct Blackhole {
    listener: socket2::Socket,
    _queued: Vec<std::net::TcpStream>,
}

impl Blackhole {
    fn start() -> Blackhole {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        listener.bind(&loopback(0).into()).expect("bind");
        listener.listen(0).expect("listen");
        let addr = listener
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet");
        let mut queued = Vec::new();
        // Fill the queue: connect until an attempt hangs (bounded).
        for _ in 0..16 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Blackhole {
                        listener,
                        _queued: queued,
                    }
                }
                Err(e) => panic!("filling the accept queue: {e}"),
            }
        }
        panic!("could not fill the accept queue of a loopback listener");
    }

    fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet")
    }
}

/// Connect attempts of this machine still waiting for an answer from `port` (SYN_SENT in
/// `/proc/net/tcp`).
fn attempts_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("procfs");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields[2].rsplit(':').next().unwrap_or("");
            u16::from_str_radix(remote_port, 16) == Ok(port) && fields[3] == "02"
        })
        .count()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("procfs").count()
}

fn get(conn: &HttpConnection, target: &str) -> Result<Vec<u8>, Error> {
    conn.send_request(&Method::GET, target, &HeaderMap::new(), dugong::Body::Empty)?;
    conn.read_response()?;
    conn.read_all()
}

#[test]
fn a_name_goes_through_the_configured_resolver() {
    let _serial = serial();
    let server = LoopbackServer::start();
    let table = Table::new(vec![("service.test", Ok(vec![loopback(0)]))]);
    let asked = Arc::clone(&table.asked);
    let conn = HttpConnection::with_config(
        "service.test",
        server.port(),
        Config::default().resolver(table),
    )
    .expect("conn");
    assert_eq!(get(&conn, "/bytes/5").expect("answered").len(), 5);
    assert_eq!(*asked.lock().expect("lock"), ["service.test"]);
    // An IP literal never reaches the resolver.
    let table = Table::new(Vec::new());
    let asked = Arc::clone(&table.asked);
    let conn = HttpConnection::with_config(
        "127.0.0.1",
        server.port(),
        Config::default().resolver(table),
    )
    .expect("conn");
    assert_eq!(get(&conn, "/bytes/3").expect("answered").len(), 3);
    assert!(asked.lock().expect("lock").is_empty());
}

/// Listeners on `::1` and `127.0.0.1` with one port number, or `None` when this machine has
/// no IPv6 loopback.
fn dual_stack_listeners() -> Option<(TcpListener, TcpListener)> {
    for _ in 0..20 {
        let v6 = TcpListener::bind("[::1]:0").ok()?;
        let port = v6.local_addr().expect("addr").port();
        if let Ok(v4) = TcpListener::bind(loopback(port)) {
            return Some((v6, v4));
        }
    }
    panic!("no port free on both ::1 and 127.0.0.1 in 20 tries");
}

/// Whether a connection waits on `listener` to be accepted.
fn has_pending(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).expect("nonblocking");
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

/// Happy Eyeballs starts with IPv6 even when the resolver lists IPv4 first; an IPv6 address
/// that connects at once leaves the IPv4 one untried. On a machine without an IPv6 loopback,
/// the IPv6 attempt fails at once and IPv4 is tried without waiting.
#[test]
fn ipv6_is_tried_first() {
    let _serial = serial();
    let Some((v6, v4)) = dual_stack_listeners() else {
        eprintln!("no IPv6 loopback (::1) here: checking that IPv4 follows a failed IPv6 at once");
        let v4 = TcpListener::bind(loopback(0)).expect("bind");
        let port = v4.local_addr().expect("addr").port();
        let v6_addr = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        let table = Table::new(vec![("dual.test", Ok(vec![loopback(0), v6_addr]))]);
        let conn =
            HttpConnection::with_config("dual.test", port, Config::default().resolver(table))
                .expect("conn");
        let started = Instant::now();
        conn.connect().expect("connected over IPv4");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        assert!(has_pending(&v4));
        return;
    };
    let port = v4.local_addr().expect("addr").port();
    let v6_addr = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    let table = Table::new(vec![("dual.test", Ok(vec![loopback(0), v6_addr]))]);
    let conn = HttpConnection::with_config("dual.test", port, Config::default().resolver(table))
        .expect("conn");
    conn.connect().expect("connected");
    // Long enough for a second attempt, had one been started (the delay is 250 ms).
    std::thread::sleep(Duration::from_millis(400));
    assert!(has_pending(&v6), "the IPv6 listener got the connection");
    assert!(!has_pending(&v4), "no attempt went to IPv4");
}

#[test]
fn resolver_failures_are_typed_and_classified() {
    let _serial = serial();
    let table = Table::new(vec![
        ("gone.test", Err(|| DnsError::NotFound)),
        ("flaky.test", Err(|| DnsError::Temporary)),
        ("broken.test", Err(|| DnsError::Failed("bad answer".into()))),
    ]);
    for (host, temporary) in [
        ("gone.test", false),
        ("flaky.test", true),
        ("broken.test", false),
    ] {
        let conn = HttpConnection::with_config(host, 80, Config::default().resolver(table.clone()))
            .expect("conn");
        match get(&conn, "/") {
            Err(e @ Error::Resolve { .. }) => {
                assert_eq!(e.is_temporary(), temporary, "{host}: {e:?}");
                let Error::Resolve { host: named, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(named, host);
            }
            other => panic!("{host}: expected a resolve error, got {other:?}"),
        }
    }
}

#[test]
fn a_slow_resolver_is_bounded_by_the_connect_timeout() {
    let _serial = serial();
    let table = Table::new(vec![("slow.test", Ok(vec![loopback(9)]))]).slow(Duration::from_secs(3));
    let config = Config::default()
        .connect_timeout(Some(Duration::from_millis(200)))
        .resolver(table);
    let conn = HttpConnection::with_config("slow.test", 80, config).expect("conn");
    let started = Instant::now();
    match get(&conn, "/") {
        Err(
            e @ Error::Timeout {
                operation: Operation::Resolve,
                ..
            },
        ) => assert!(e.is_temporary()),
        other => panic!("expected a resolve timeout, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "the lookup was waited for {took:?}, not the connect timeout"
    );
}

#[test]
fn a_green_task_waiting_on_dns_does_not_stop_the_others() {
    let _serial = serial();
    let server = LoopbackServer::start();
    let port = server.port();
    let slow =
        Table::new(vec![("slow.test", Ok(vec![loopback(0)]))]).slow(Duration::from_millis(600));
    let resolved = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&resolved);
    let (slow_result, others_done_first) = dugong::green::run(move |task| {
        let waiting = task.spawn(move |task| {
            let conn = task.connect_with("slow.test", port, Config::default().resolver(slow))?;
            conn.send_request(
                &Method::GET,
                "/bytes/7",
                &HeaderMap::new(),
                dugong::Body::Empty,
            )?;
            flag.store(true, Ordering::SeqCst);
            conn.read_response()?;
            conn.read_all()
        });
        let busy = task.spawn(move |task| -> Result<bool, Error> {
            let conn = task.connect("127.0.0.1", port)?;
            for _ in 0..20 {
                conn.send_request(
                    &Method::GET,
                    "/bytes/1",
                    &HeaderMap::new(),
                    dugong::Body::Empty,
                )?;
                conn.read_response()?;
                conn.read_all()?;
            }
            Ok(!resolved.load(Ordering::SeqCst))
        });
        let first = task.join(busy).expect("no panic").expect("requests");
        (task.join(waiting).expect("no panic"), first)
    })
    .expect("main task");
    assert_eq!(slow_result.expect("the slow name resolves").len(), 7);
    assert!(
        others_done_first,
        "the runtime thread was blocked while a task resolved a name"
    );
}

#[test]
fn a_blackholed_address_costs_one_attempt_delay_and_is_closed() {
    let _serial = serial();
    let server = LoopbackServer::start();
    let hole = Blackhole::start();
    let table = Table::new(vec![(
        "two.test",
        Ok(vec![hole.addr(), loopback(server.port())]),
    )]);
    // The table keeps each address's own port: the hole's and the server's.
    #[derive(Debug)]
    struct Exact(Table);
    impl Resolve for Exact {
        fn resolve(&self, host: &str, _: u16) -> Result<Vec<SocketAddr>, DnsError> {
            match self.0.answers.iter().find(|(n, _)| *n == host) {
                Some((_, Ok(a))) => Ok(a.clone()),
                _ => Err(DnsError::NotFound),
            }
        }
    }
    let config = Config::default()
        .connect_timeout(Some(Duration::from_secs(5)))
        .resolver(Exact(table));
    let conn = HttpConnection::with_config("two.test", 1, config).expect("conn");
    let started = Instant::now();
    assert_eq!(
        get(&conn, "/bytes/4")
            .expect("the second address answers")
            .len(),
        4
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_secs(2),
        "the second attempt started after {took:?}, not the 250 ms attempt delay"
    );
    assert_eq!(
        attempts_to(hole.addr().port()),
        0,
        "the losing attempt was not closed"
    );
}

#[test]
fn a_refused_address_moves_on_at_once() {
    let _serial = serial();
    let server = LoopbackServer::start();
    #[derive(Debug)]
    struct Two(SocketAddr, SocketAddr);
    impl Resolve for Two {
        fn resolve(&self, _: &str, _: u16) -> Result<Vec<SocketAddr>, DnsError> {
            Ok(vec![self.0, self.1])
        }
    }
    let resolver = Two(loopback(closed_port()), loopback(server.port()));
    let conn = HttpConnection::with_config("two.test", 1, Config::default().resolver(resolver))
        .expect("conn");
    let started = Instant::now();
    assert_eq!(get(&conn, "/bytes/2").expect("answered").len(), 2);
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "a refused attempt must not wait for the attempt delay"
    );
    // Every address refused: the last error, and a temporary one.
    let resolver = Two(loopback(closed_port()), loopback(closed_port()));
    let conn = HttpConnection::with_config("two.test", 1, Config::default().resolver(resolver))
        .expect("conn");
    match get(&conn, "/") {
        Err(e @ Error::Connect { .. }) => {
            assert!(e.is_temporary());
            let Error::Connect { source, .. } = &e else {
                unreachable!()
            };
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[test]
fn only_a_blackhole_is_a_connect_timeout() {
    let _serial = serial();
    let hole = Blackhole::start();
    let config = Config::default().connect_timeout(Some(Duration::from_millis(300)));
    let before = open_fds();
    let conn = HttpConnection::with_config("127.0.0.1", hole.addr().port(), config).expect("conn");
    let started = Instant::now();
    match get(&conn, "/") {
        Err(
            e @ Error::Timeout {
                operation: Operation::Connect,
                ..
            },
        ) => assert!(e.is_temporary()),
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(open_fds(), before, "the timed-out attempt was not closed");
    assert_eq!(attempts_to(hole.addr().port()), 0);
    // The queue stayed full until here.
    drop(hole);
}
