//! A minimal blocking HTTP/1.1 response reader for the harness's own tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connects with 10 s read/write timeouts so no test can hang.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw_head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads responses off one connection, keeping leftover bytes.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            stream: connect(addr),
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    /// Reads more; returns false on EOF.
    fn more(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        let n = self.stream.read(&mut tmp).expect("read response");
        self.buf.extend_from_slice(&tmp[..n]);
        n > 0
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=p).collect();
                return String::from_utf8(line).unwrap().trim_end().to_string();
            }
            assert!(self.more(), "EOF inside a line");
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.more(), "EOF inside a body");
        }
        self.buf.drain(..n).collect()
    }

    /// True when the server closed the connection with nothing more sent.
    pub fn at_eof(&mut self) -> bool {
        self.buf.is_empty() && !self.more()
    }

    /// Reads one response (interim 1xx responses included); `head` says
    /// whether it answers a HEAD request.
    pub fn response(&mut self, head: bool) -> Response {
        let status_line = self.line();
        let status: u16 = status_line[9..12].parse().unwrap();
        let mut raw_head = format!("{status_line}\r\n");
        let mut headers = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                break;
            }
            raw_head.push_str(&format!("{l}\r\n"));
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut r = Response {
            status,
            headers,
            body: Vec::new(),
            raw_head,
        };
        if head || status < 200 || status == 204 || status == 304 {
            return r;
        }
        if r.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).unwrap();
                if size == 0 {
                    assert_eq!(self.line(), "");
                    break;
                }
                let piece = self.take(size);
                r.body.extend_from_slice(&piece);
                assert_eq!(self.line(), "");
            }
        } else if let Some(n) = r.header("content-length") {
            let n = n.parse().unwrap();
            r.body = self.take(n);
        } else {
            while self.more() {}
            r.body = std::mem::take(&mut self.buf);
        }
        r
    }
}
