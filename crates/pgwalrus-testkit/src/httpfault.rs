//! A fault-injecting HTTP/1.1 proxy for tests of object storage: in front of a real S3
//! server, it fails one request in `every` — answering 503 without forwarding, resetting
//! the connection before forwarding, forwarding and then dropping the answer (the write
//! committed, the client never learns it: the unclear answer the archiver must settle by
//! reading back), or forwarding slowly — and passes the others through unchanged.
//!
//! It understands just enough HTTP for S3 clients: one request at a time per connection,
//! bodies by `Content-Length` or chunked, no body in answers to HEAD or with 204/304.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The faults injected so far, by kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Requests seen.
    pub requests: AtomicU64,
    /// Answered 503 without forwarding.
    pub unavailable: AtomicU64,
    /// Connection reset before forwarding.
    pub reset_before: AtomicU64,
    /// Forwarded (so committed), then the connection dropped without an answer.
    pub lost_answer: AtomicU64,
    /// Forwarded after a delay.
    pub slow: AtomicU64,
}

impl FaultCounts {
    /// Every fault injected.
    pub fn total(&self) -> u64 {
        self.unavailable.load(Ordering::Relaxed)
            + self.reset_before.load(Ordering::Relaxed)
            + self.lost_answer.load(Ordering::Relaxed)
            + self.slow.load(Ordering::Relaxed)
    }
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct HttpFaultProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    counts: Arc<FaultCounts>,
    accept: Option<JoinHandle<()>>,
}

impl HttpFaultProxy {
    /// A proxy on 127.0.0.1 forwarding to `127.0.0.1:upstream`, failing one request in
    /// `every` (0: none), the kinds in turn from `seed`.
    ///
    /// # Panics
    /// When it cannot listen.
    pub fn start(upstream: u16, every: u64, seed: u64) -> HttpFaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let port = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("non-blocking accept");
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(FaultCounts::default());
        let (stop2, counts2) = (Arc::clone(&stop), Arc::clone(&counts));
        let accept = std::thread::spawn(move || {
            let mut rng = seed | 1;
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let counts = Arc::clone(&counts2);
                        let stop = Arc::clone(&stop2);
                        // xorshift: a different fault sequence per connection.
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let seed = rng;
                        std::thread::spawn(move || {
                            let _ = serve(client, upstream, every, seed, &counts, &stop);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpFaultProxy {
            port,
            stop,
            counts,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What was injected.
    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }
}

impl Drop for HttpFaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One message: its head (start line and headers, with the blank line) and body.
struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
    /// The request's method (requests only).
    method: String,
}

fn serve(
    client: TcpStream,
    upstream: u16,
    every: u64,
    seed: u64,
    counts: &FaultCounts,
    stop: &AtomicBool,
) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let mut server: Option<(BufReader<TcpStream>, TcpStream)> = None;
    let mut rng = seed | 1;
    while !stop.load(Ordering::Relaxed) {
        let Some(request) = read_message(&mut from_client, None)? else {
            return Ok(());
        };
        let n = counts.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let fault = if every > 0 && n.is_multiple_of(every) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            Some(rng % 4)
        } else {
            None
        };
        match fault {
            Some(0) => {
                counts.unavailable.fetch_add(1, Ordering::Relaxed);
                to_client.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
            Some(1) => {
                counts.reset_before.fetch_add(1, Ordering::Relaxed);
                let _ = to_client.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(3) => {
                counts.slow.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_secs(2));
            }
            _ => {}
        }
        if server.is_none() {
            let s = TcpStream::connect(("127.0.0.1", upstream))?;
            s.set_read_timeout(Some(Duration::from_secs(120)))?;
            server = Some((BufReader::new(s.try_clone()?), s));
        }
        let Some((from_server, to_server)) = server.as_mut() else {
            return Ok(());
        };
        to_server.write_all(&request.head)?;
        to_server.write_all(&request.body)?;
        let Some(answer) = read_message(from_server, Some(&request.method))? else {
            return Ok(());
        };
        if fault == Some(2) {
            // The server did it; the client never hears so.
            counts.lost_answer.fetch_add(1, Ordering::Relaxed);
            let _ = to_client.shutdown(Shutdown::Both);
            return Ok(());
        }
        to_client.write_all(&answer.head)?;
        to_client.write_all(&answer.body)?;
        let closing = String::from_utf8_lossy(&answer.head)
            .to_ascii_lowercase()
            .contains("connection: close");
        if closing {
            return Ok(());
        }
    }
    Ok(())
}

/// Reads one message; `request_method` is set when reading an answer (HEAD answers have
/// no body). `None` at a clean end of the connection.
fn read_message(r: &mut impl BufRead, request_method: Option<&str>) -> io::Result<Option<Message>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let blank = line == b"\r\n" || line == b"\n";
        head.extend_from_slice(&line);
        if blank {
            break;
        }
        if head.len() > 64 * 1024 {
            return Err(io::Error::other("headers too long"));
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.lines();
    let start = lines.next().unwrap_or_default().to_owned();
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().ok();
            } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    let method = match request_method {
        None => start.split(' ').next().unwrap_or_default().to_owned(),
        Some(m) => m.to_owned(),
    };
    let status: u16 = match request_method {
        Some(_) => start
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        None => 0,
    };
    let no_body = request_method.is_some()
        && (method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status));
    let mut body = Vec::new();
    if no_body {
    } else if chunked {
        loop {
            let mut size_line = Vec::new();
            r.read_until(b'\n', &mut size_line)?;
            body.extend_from_slice(&size_line);
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&size_line)
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or("0"),
                16,
            )
            .map_err(io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Message { head, body, method }))
}
