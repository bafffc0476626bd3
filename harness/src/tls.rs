//! TLS peers: [`TestCa`] makes certificates at test time, and [`TlsTerminator`] puts TLS on
//! `127.0.0.1:0` in front of any plain peer (a [`ScriptedServer`](crate::ScriptedServer), a
//! [`LoopbackServer`](crate::LoopbackServer)), so every plain test table has a TLS column.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

use crate::net::{self, lock, Acceptor};

/// Whether a certificate is valid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid from 2000 to 2100.
    Current,
    /// Expired in 2001.
    Expired,
}

/// A certificate chain and its key, for a server.
#[derive(Debug)]
pub struct Identity {
    /// The leaf certificate first, then the CA's.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS #8).
    pub key: PrivateKeyDer<'static>,
    /// `chain` in PEM, for servers that read files (nginx).
    chain_pem: String,
    /// `key` in PEM.
    key_pem: String,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            chain_pem: self.chain_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

impl Identity {
    /// The chain in PEM (leaf first), as `ssl_certificate` files hold it.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The private key in PEM (PKCS #8), as `ssl_certificate_key` files hold it.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

/// A certificate authority made at test time.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A new CA with a fresh key.
    ///
    /// # Panics
    ///
    /// If rcgen cannot make a key or a certificate (a broken build).
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Each CA has its own name, so a client that trusts another one sees an unknown
        // issuer rather than a bad signature.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("dugong test CA {} {n}", std::process::id());
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let key = KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("ca certificate");
        TestCa { cert, key }
    }

    /// The CA certificate, to trust in a client.
    pub fn root(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The CA certificate in PEM.
    pub fn root_pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    ///
    /// # Panics
    ///
    /// If rcgen refuses the names.
    pub fn issue(&self, names: &[&str], validity: Validity) -> Identity {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server certificate names");
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (
                rcgen::date_time_ymd(2000, 1, 1),
                rcgen::date_time_ymd(2100, 1, 1),
            ),
            Validity::Expired => (
                rcgen::date_time_ymd(2000, 1, 1),
                rcgen::date_time_ymd(2001, 1, 1),
            ),
        };
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server certificate");
        Identity {
            chain: vec![cert.der().clone(), self.root()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            chain_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
        }
    }
}

/// How a [`TlsTerminator`] ends a connection whose upstream closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseMode {
    /// `close_notify`, then a TCP close: a clean TLS end.
    CloseNotify,
    /// A TCP close without `close_notify`, as a truncation attack would look.
    Abrupt,
}

/// TLS on `127.0.0.1:0` in front of a plain upstream: each accepted connection completes a
/// TLS handshake with `identity` and relays plaintext both ways to a new connection to
/// `upstream`. An upstream close ends the client connection as `close` says; an upstream
/// reset resets it. Stops (joining its threads) when dropped.
#[derive(Debug)]
pub struct TlsTerminator {
    acceptor: Acceptor,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
}

/// What a client asked for in a completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The name the client sent by SNI (none for an IP address, which SNI cannot carry).
    pub server_name: Option<String>,
    /// The ALPN protocol agreed on (the terminator offers only `http/1.1`).
    pub alpn: Option<Vec<u8>>,
}

impl TlsTerminator {
    /// Starts the terminator.
    ///
    /// # Panics
    ///
    /// If rustls refuses `identity`.
    pub fn start(upstream: SocketAddr, identity: Identity, close: CloseMode) -> TlsTerminator {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(identity.chain, identity.key)
            .expect("server identity");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&handshakes);
        let acceptor = Acceptor::start("tls", move |client, shared| {
            if let Err(e) = relay(client, upstream, &config, close, shared, &record) {
                if !net::is_disconnect(&e) && !net::is_timeout(&e) {
                    shared.errors.push(format!("tls relay: {e}"));
                }
            }
        });
        TlsTerminator {
            acceptor,
            handshakes,
        }
    }

    /// The handshakes completed so far, in order.
    pub fn handshakes(&self) -> Vec<Handshake> {
        lock(&self.handshakes).clone()
    }

    /// The listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.acceptor.addr().port()
    }

    /// Errors recorded by the relay threads (handshake failures are expected in tests of
    /// bad certificates and are recorded too).
    pub fn errors(&self) -> Vec<String> {
        self.acceptor.shared.errors.snapshot()
    }
}

/// One TLS connection and its session, shared by the two relay directions.
struct Session {
    conn: Mutex<ServerConnection>,
    /// The client socket, written only while `conn` is locked so records stay in order.
    client: TcpStream,
}

impl Session {
    /// Sends every record the session has, under its lock.
    fn flush(&self, conn: &mut ServerConnection) -> io::Result<()> {
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out)?;
        }
        (&self.client).write_all(&out)
    }
}

fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    config: &Arc<ServerConfig>,
    close: CloseMode,
    shared: &Arc<net::Shared>,
    handshakes: &Mutex<Vec<Handshake>>,
) -> io::Result<()> {
    net::configure(&client, true)?;
    let server = TcpStream::connect(upstream)?;
    net::configure(&server, true)?;
    let _registered = shared.registry.register(&[&client, &server]);
    let mut conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    // Plaintext from the upstream may arrive before the handshake is done: buffer it all.
    conn.set_buffer_limit(None);
    let session = Arc::new(Session {
        conn: Mutex::new(conn),
        client: client.try_clone()?,
    });
    // Upstream to client, on its own thread.
    let (down, to_client, sh) = (
        Arc::clone(&session),
        server.try_clone()?,
        Arc::clone(shared),
    );
    shared.workers.spawn("tls-down", &shared.errors, move || {
        if let Err(e) = downstream(&down, to_client, close) {
            if !net::is_disconnect(&e) && !net::is_timeout(&e) {
                sh.errors.push(format!("tls relay down: {e}"));
            }
        }
    });
    let upstream = server.try_clone()?;
    let result = upstream_loop(&session, client, server, handshakes);
    if result.is_err() {
        // The client side failed (a refused handshake, say): end the other direction too,
        // rather than leave it waiting on an idle upstream.
        let _ = upstream.shutdown(Shutdown::Both);
        let _ = session.client.shutdown(Shutdown::Both);
    }
    result
}

/// Client to upstream: records in, plaintext out.
fn upstream_loop(
    session: &Session,
    mut client: TcpStream,
    mut server: TcpStream,
    handshakes: &Mutex<Vec<Handshake>>,
) -> io::Result<()> {
    let mut recorded = false;
    let mut raw = vec![0u8; 64 * 1024];
    let mut plain = Vec::new();
    loop {
        let n = client.read(&mut raw)?;
        if n == 0 {
            let _ = server.shutdown(Shutdown::Write);
            return Ok(());
        }
        {
            let mut conn = lock(&session.conn);
            let mut input = &raw[..n];
            while !input.is_empty() {
                conn.read_tls(&mut input)?;
                let state = conn.process_new_packets();
                session.flush(&mut conn)?;
                let state = state.map_err(io::Error::other)?;
                if !recorded && !conn.is_handshaking() {
                    recorded = true;
                    lock(handshakes).push(Handshake {
                        server_name: conn.server_name().map(str::to_owned),
                        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                    });
                }
                let ready = state.plaintext_bytes_to_read();
                if ready > 0 {
                    let start = plain.len();
                    plain.resize(start + ready, 0);
                    conn.reader().read_exact(&mut plain[start..])?;
                }
                if state.peer_has_closed() {
                    break;
                }
            }
        }
        if !plain.is_empty() {
            server.write_all(&plain)?;
            plain.clear();
        }
    }
}

/// Upstream to client: plaintext in, records out; the upstream's close becomes the client's
/// as `close` says.
fn downstream(session: &Session, mut server: TcpStream, close: CloseMode) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(n) => n,
            Err(e) if net::is_disconnect(&e) => {
                // The upstream reset: reset the client too.
                let _ = socket2::SockRef::from(&session.client)
                    .set_linger(Some(std::time::Duration::ZERO));
                let _ = session.client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut conn = lock(&session.conn);
        if n == 0 {
            if close == CloseMode::CloseNotify {
                conn.send_close_notify();
                session.flush(&mut conn)?;
            }
            return session.client.shutdown(Shutdown::Write);
        }
        conn.writer().write_all(&buf[..n])?;
        session.flush(&mut conn)?;
    }
}
