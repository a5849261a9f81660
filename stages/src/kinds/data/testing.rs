//! A small HTTP/1.1 file server on 127.0.0.1 for tests of `url:` sources (unit and end to
//! end): it serves one body, honours `Range: bytes=N-`, and can misbehave on purpose. Not
//! used by the stage itself.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// How the server answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Every request gets the body (or the requested range).
    Normal,
    /// The first response announces the full length but sends only this many bytes, then
    /// closes the connection.
    TruncateFirst(usize),
    /// The first this-many requests get `500 Internal Server Error`.
    FailFirst(usize),
    /// Every request gets `404 Not Found`.
    NotFound,
}

#[derive(Default)]
struct Log {
    /// The `Range` start of each request (`None`: no range).
    ranges: Vec<Option<usize>>,
}

pub struct Server {
    port: u16,
    log: Arc<Mutex<Log>>,
}

impl Server {
    /// Listens on an ephemeral port; the accept loop runs on a detached thread that ends
    /// with the process.
    pub fn start(body: Vec<u8>, behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        let body = Arc::new(body);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &body, behaviour, &shared);
            }
        });
        Server { port, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.log.lock().expect("log").ranges.len()
    }

    /// The `Range` start of each request so far.
    pub fn ranges(&self) -> Vec<Option<usize>> {
        self.log.lock().expect("log").ranges.clone()
    }
}

/// Answers one request on `stream`. The request is logged as soon as its head is read, before
/// the answer goes out: a client that has its answer always finds its request counted.
fn serve(stream: TcpStream, body: &[u8], behaviour: Behaviour, log: &Mutex<Log>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut range = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse().ok();
        }
    }
    // The request's number (from 0) decides how a misbehaving server answers it.
    let n = {
        let mut log = log.lock().expect("log");
        log.ranges.push(range);
        log.ranges.len() - 1
    };
    let mut out = stream;
    let status = |out: &mut TcpStream, code: &str| {
        let _ = write!(
            out,
            "HTTP/1.1 {code}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    match behaviour {
        Behaviour::NotFound => status(&mut out, "404 Not Found"),
        Behaviour::FailFirst(k) if n < k => status(&mut out, "500 Internal Server Error"),
        _ => {
            let start = range.unwrap_or(0).min(body.len());
            let rest = &body[start..];
            let head = if range.is_some() {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\n",
                    body.len().saturating_sub(1),
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\n".to_string()
            };
            let _ = write!(
                out,
                "{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
                rest.len()
            );
            let send = match behaviour {
                Behaviour::TruncateFirst(cut) if n == 0 => &rest[..cut.min(rest.len())],
                _ => rest,
            };
            let _ = out.write_all(send);
        }
    }
    let _ = out.flush();
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
