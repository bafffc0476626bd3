// Shared by benches/green.rs and benches/vs_may.rs (`include!`d): the server side of the
// idle-connection measurements, run in a child process so that both ends of 10,000
// connections fit under the descriptor limit.

/// A channel that receives once this process's stdin closes (or a line arrives): how a
/// parent stops its server child.
fn stdin_closed() -> std::sync::mpsc::Receiver<()> {
    let (closed, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = closed.send(());
    });
    rx
}

/// Prints the port of a new listener on 127.0.0.1, then accepts connections and holds them,
/// never reading, until `stop` receives.
fn hold_idle_connections(stop: &std::sync::mpsc::Receiver<()>) {
    use std::io::Write;
    // A long accept queue: thousands of clients connect at once.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("socket");
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(16_384).expect("listen");
    let listener: std::net::TcpListener = socket.into();
    listener.set_nonblocking(true).expect("nonblocking");
    println!("{}", listener.local_addr().expect("addr").port());
    std::io::stdout().flush().expect("flush the port");
    let mut held = Vec::new();
    loop {
        match listener.accept() {
            Ok((stream, _)) => held.push(stream),
            Err(_) => {
                if stop
                    .recv_timeout(std::time::Duration::from_millis(1))
                    .is_ok()
                {
                    return;
                }
            }
        }
    }
}
