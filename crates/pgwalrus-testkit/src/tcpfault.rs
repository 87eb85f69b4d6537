//! A fault-injecting TCP proxy for tests of the replication connection: between pgwalrus and
//! a real server on 127.0.0.1, it passes bytes through unchanged until a test injects a
//! [`TcpFault`] — cut the connection after N more bytes from the server (mid-message, as a
//! FIN or a reset), stall both directions for a while, trickle the server's bytes at a few
//! KiB/s, read the server's stream slowly in chunks (its send buffer fills, as behind a slow
//! reader), let the server vanish without the client being told (half-open: the client's
//! side stays open and silent until the client gives it up), or black-hole both sides (a
//! partition: each side stays open until its own peer gives up).
//!
//! The proxy counts what took effect, by kind, and for half-open connections how long the
//! client took to give them up ([`TcpFaultCounts`]). It runs on a thread of its own with a
//! current-thread tokio runtime; dropping it stops that thread, closing every socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// What to do to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFault {
    /// Forward `after` more bytes from the server to the client, then close both sides
    /// abruptly: the client sees the stream end wherever that byte fell (inside a message,
    /// usually), with a FIN, or with a reset (RST) when `reset`; the server sees its
    /// connection closed.
    Cut {
        /// Bytes of the server's stream still delivered.
        after: u64,
        /// End the client's side with a reset instead of a FIN.
        reset: bool,
    },
    /// Forward nothing either way for this long, then carry on; nothing is lost.
    Stall(Duration),
    /// Forward the server's bytes at about `bytes_per_sec` for `duration`, then at full
    /// speed again.
    Trickle {
        /// The rate while it lasts.
        bytes_per_sec: u32,
        /// How long it lasts.
        duration: Duration,
    },
    /// The server vanishes without the client being told: nothing more is forwarded, the
    /// server's side is closed (its walsender ends and frees a slot, as when the server's
    /// host goes away), and the client's side stays open, swallowing what the client
    /// sends and never answering, until the client closes it.
    HalfOpen,
    /// A partition: nothing more is forwarded either way and neither side is told; each
    /// side is closed only when its peer closes it (the server's walsender once its
    /// `wal_sender_timeout` expires, the client once it gives up), while new connections
    /// go through.
    BlackHole,
    /// Read the server's stream `chunk` bytes at a time with `pause` after each, for
    /// `duration`, the other direction flowing freely: the server's send buffer fills and
    /// its sends block, as behind a slow reader.
    SlowReader {
        /// Bytes per read.
        chunk: usize,
        /// The pause after each read.
        pause: Duration,
        /// How long it lasts.
        duration: Duration,
    },
}

/// What took effect so far, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpFaultCounts {
    /// Connections accepted.
    pub connections: u64,
    /// Connections cut (counted when the cut happens).
    pub cut: u64,
    /// Stalls applied to a connection.
    pub stall: u64,
    /// Trickles applied to a connection.
    pub trickle: u64,
    /// Connections made half-open.
    pub half_open: u64,
    /// Slow readers applied to a connection.
    pub slow_reader: u64,
    /// Connections black-holed.
    pub black_hole: u64,
    /// For each half-open connection the client has closed: how long after the fault.
    pub half_open_given_up: Vec<Duration>,
    /// For each black-holed connection the client has closed: how long after the fault.
    pub black_hole_given_up: Vec<Duration>,
}

impl TcpFaultCounts {
    /// Every fault that took effect.
    pub fn total(&self) -> u64 {
        self.cut + self.stall + self.trickle + self.half_open + self.slow_reader + self.black_hole
    }

    fn count(&mut self, fault: TcpFault) {
        match fault {
            TcpFault::Cut { .. } => self.cut += 1,
            TcpFault::Stall(_) => self.stall += 1,
            TcpFault::Trickle { .. } => self.trickle += 1,
            TcpFault::HalfOpen => self.half_open += 1,
            TcpFault::SlowReader { .. } => self.slow_reader += 1,
            TcpFault::BlackHole => self.black_hole += 1,
        }
    }
}

/// A fault as a connection sees it: what, since when, and a number telling a new
/// injection from the one already seen.
#[derive(Debug, Clone, Copy)]
struct Injected {
    fault: TcpFault,
    at: Instant,
    seq: u64,
}

type Control = watch::Sender<Option<Injected>>;

#[derive(Debug, Default)]
struct Shared {
    /// One sender per connection still carried.
    live: Mutex<Vec<Control>>,
    /// A fault for the next connection accepted.
    next: Mutex<Option<TcpFault>>,
    counts: Mutex<TcpFaultCounts>,
    seq: AtomicU64,
}

impl Shared {
    fn counts(&self) -> std::sync::MutexGuard<'_, TcpFaultCounts> {
        // A panicking connection task leaves the counts as they were: still worth reading.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn injected(&self, fault: TcpFault) -> Injected {
        Injected {
            fault,
            at: Instant::now(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct TcpFaultProxy {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TcpFaultProxy {
    /// A proxy on 127.0.0.1 (a free port) carrying each connection to `127.0.0.1:upstream`.
    ///
    /// # Panics
    /// When it cannot listen or start its thread.
    pub fn start(upstream: u16) -> TcpFaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the TCP proxy");
        let port = listener.local_addr().expect("its address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream));
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the TCP proxy's runtime");
        let shared2 = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tcp-fault-proxy".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        () = accept(listener, upstream, shared2) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection's task and with it its
                // sockets.
                drop(runtime);
            })
            .expect("the TCP proxy's thread");
        TcpFaultProxy {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Applies `fault` to every connection carried now; returns how many (a fault applied
    /// to none is not counted).
    pub fn inject(&self, fault: TcpFault) -> usize {
        let injected = self.shared.injected(fault);
        let mut live = self
            .shared
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        live.retain(|c| !c.is_closed());
        let applied = live
            .iter()
            .filter(|c| c.send(Some(injected)).is_ok())
            .count();
        drop(live);
        // A cut counts when it happens, the others as they start.
        if applied > 0 && !matches!(fault, TcpFault::Cut { .. }) {
            self.shared.counts().count(fault);
        }
        applied
    }

    /// Applies `fault` to the next connection accepted, from its first byte (a cut then
    /// falls inside the start-up and authentication exchange when `after` is small).
    pub fn inject_next(&self, fault: TcpFault) {
        *self
            .shared
            .next
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(fault);
    }

    /// Connections carried now.
    pub fn live(&self) -> usize {
        let mut live = self
            .shared
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        live.retain(|c| !c.is_closed());
        live.len()
    }

    /// What took effect so far.
    pub fn counts(&self) -> TcpFaultCounts {
        self.shared.counts().clone()
    }
}

impl Drop for TcpFaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let first = shared
            .next
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let injected = first.map(|fault| shared.injected(fault));
        let (control, watched) = watch::channel(injected);
        {
            let mut counts = shared.counts();
            counts.connections += 1;
            if let Some(fault) = first.filter(|f| !matches!(f, TcpFault::Cut { .. })) {
                counts.count(fault);
            }
        }
        shared
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(control);
        tokio::spawn(carry(client, upstream, watched, Arc::clone(&shared)));
    }
}

/// How one direction of a connection ended.
enum End {
    /// The sender closed its side; the other side's write half was shut down in turn.
    Eof,
    /// A write failed, or the proxy is going away: close everything.
    Broken,
    /// [`TcpFault::Cut`] reached its byte.
    Cut { reset: bool },
    /// [`TcpFault::HalfOpen`], injected at this instant.
    HalfOpen(Instant),
    /// [`TcpFault::BlackHole`], injected at this instant.
    BlackHole(Instant),
}

/// Carries one connection until both directions end or a fault ends it.
async fn carry(
    mut client: TcpStream,
    upstream: SocketAddr,
    control: watch::Receiver<Option<Injected>>,
    shared: Arc<Shared>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let down = server_to_client(server_read, client_write, control.clone());
        let up = client_to_server(client_read, server_write, control.clone());
        tokio::pin!(down, up);
        let (mut down_done, mut up_done) = (false, false);
        loop {
            let end = tokio::select! {
                end = &mut down, if !down_done => { down_done = true; end }
                end = &mut up, if !up_done => { up_done = true; end }
            };
            match end {
                End::Eof if !(down_done && up_done) => {}
                end => break end,
            }
        }
    };
    // No longer carried: what is injected from now on does not reach this connection (a
    // half-open or black-holed one only waits for its peers to close).
    drop(control);
    match end {
        End::Eof | End::Broken => {}
        End::Cut { reset } => {
            if reset {
                // Closing with a zero linger sends a reset instead of a FIN.
                let _ = SockRef::from(&client).set_linger(Some(Duration::ZERO));
            }
            shared.counts().cut += 1;
        }
        End::HalfOpen(at) => {
            drop(server);
            // Swallow whatever the client still sends, answer nothing, and keep the socket
            // open until the client gives up.
            let mut sink = vec![0u8; 16 * 1024];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
            shared.counts().half_open_given_up.push(at.elapsed());
        }
        End::BlackHole(at) => {
            // Each side is dropped as soon as its peer closes it, not before.
            let client_side = async move {
                drain(&mut client).await;
                shared.counts().black_hole_given_up.push(at.elapsed());
            };
            let server_side = async move { drain(&mut server).await };
            tokio::join!(client_side, server_side);
        }
    }
}

/// Reads and discards until the peer closes the connection.
async fn drain(stream: &mut TcpStream) {
    let mut sink = vec![0u8; 16 * 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// The fault in force, if any, and whether it is new since `seen`.
fn current(
    control: &mut watch::Receiver<Option<Injected>>,
    seen: &mut u64,
) -> (Option<Injected>, bool) {
    let injected = *control.borrow_and_update();
    let new = injected.is_some_and(|i| i.seq != *seen);
    if let Some(i) = injected {
        *seen = i.seq;
    }
    (injected, new)
}

/// Waits for a new fault; never returns once the proxy is gone (the task is dropped then).
async fn changed(control: &mut watch::Receiver<Option<Injected>>) {
    if control.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn server_to_client(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    mut control: watch::Receiver<Option<Injected>>,
) -> End {
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0;
    // Bytes still delivered before a cut, and how it ends.
    let mut cut: Option<(u64, bool)> = None;
    loop {
        let (injected, new) = current(&mut control, &mut seen);
        let now = Instant::now();
        let (mut limit, pause) = match injected {
            Some(Injected {
                fault: TcpFault::Cut { after, reset },
                ..
            }) => {
                if new {
                    cut = Some((after, reset));
                }
                (buf.len(), None)
            }
            Some(Injected {
                fault: TcpFault::HalfOpen,
                at,
                ..
            }) => return End::HalfOpen(at),
            Some(Injected {
                fault: TcpFault::BlackHole,
                at,
                ..
            }) => return End::BlackHole(at),
            Some(Injected {
                fault: TcpFault::Stall(d),
                at,
                ..
            }) if now < at + d => {
                tokio::select! {
                    () = tokio::time::sleep_until(at + d) => {}
                    () = changed(&mut control) => {}
                }
                continue;
            }
            Some(Injected {
                fault:
                    TcpFault::Trickle {
                        bytes_per_sec,
                        duration,
                    },
                at,
                ..
            }) if now < at + duration => {
                // A twentieth of the rate every 50 ms.
                let per_tick = usize::try_from(bytes_per_sec / 20).unwrap_or(usize::MAX);
                (per_tick.max(1), Some(Duration::from_millis(50)))
            }
            Some(Injected {
                fault:
                    TcpFault::SlowReader {
                        chunk,
                        pause,
                        duration,
                    },
                at,
                ..
            }) if now < at + duration => (chunk.max(1), Some(pause)),
            _ => (buf.len(), None),
        };
        if let Some((left, reset)) = cut {
            if left == 0 {
                return End::Cut { reset };
            }
            limit = limit.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let n = tokio::select! {
            read = from.read(&mut buf[..limit]) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return End::Eof;
                }
                Ok(n) => n,
            },
            () = changed(&mut control) => continue,
        };
        if let Some((left, _)) = &mut cut {
            *left -= n as u64;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return End::Broken;
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
}

async fn client_to_server(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    mut control: watch::Receiver<Option<Injected>>,
) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = 0;
    loop {
        let (injected, _) = current(&mut control, &mut seen);
        match injected {
            Some(Injected {
                fault: TcpFault::HalfOpen,
                at,
                ..
            }) => return End::HalfOpen(at),
            Some(Injected {
                fault: TcpFault::BlackHole,
                at,
                ..
            }) => return End::BlackHole(at),
            Some(Injected {
                fault: TcpFault::Stall(d),
                at,
                ..
            }) if Instant::now() < at + d => {
                tokio::select! {
                    () = tokio::time::sleep_until(at + d) => {}
                    () = changed(&mut control) => {}
                }
                continue;
            }
            _ => {}
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return End::Eof;
                }
                Ok(n) => n,
            },
            () = changed(&mut control) => continue,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return End::Broken;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;

    use super::*;

    /// An upstream on a free port: with `endless`, it sends 0, 1, 2, … 250, 0, 1, … to each
    /// client until the client goes; otherwise it echoes what the client sends.
    fn upstream(endless: bool) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                std::thread::spawn(move || {
                    if endless {
                        let pattern: Vec<u8> = (0..251 * 64).map(|i| (i % 251) as u8).collect();
                        while conn.write_all(&pattern).is_ok() {}
                        return;
                    }
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 || conn.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn pattern_ok(bytes: &[u8], from: usize) -> bool {
        bytes
            .iter()
            .enumerate()
            .all(|(i, b)| *b == ((from + i) % 251) as u8)
    }

    fn connect(proxy: &TcpFaultProxy) -> StdStream {
        let s = StdStream::connect(("127.0.0.1", proxy.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn wait_live(proxy: &TcpFaultProxy, n: usize) {
        assert!(crate::wait_until(Duration::from_secs(5), || proxy.live() == n));
    }

    /// `inject` hands a fault to each connection's task, which takes it up on its next
    /// turn: bytes written at once could still pass before it does (seen on a loaded CI
    /// machine). Half a second is ample for a task that only waits on the channel.
    fn settle() {
        std::thread::sleep(Duration::from_millis(500));
    }

    /// Nothing comes back on `c` for 300 ms, and the connection is not closed either.
    #[track_caller]
    fn assert_silent(c: &mut std::net::TcpStream) {
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 16];
        let err = c.read(&mut buf).expect_err("silence, not an end");
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{err}"
        );
    }

    #[test]
    fn passes_bytes_through_and_cuts_at_the_byte_asked() {
        let proxy = TcpFaultProxy::start(upstream(true));
        let mut c = connect(&proxy);
        let mut got = vec![0u8; 1000];
        c.read_exact(&mut got).unwrap();
        assert!(pattern_ok(&got, 0));
        wait_live(&proxy, 1);
        // The cut comes 777 bytes after whatever the proxy had forwarded when it was
        // injected (more than the client read: socket buffers).
        assert_eq!(
            proxy.inject(TcpFault::Cut {
                after: 777,
                reset: false
            }),
            1
        );
        let mut rest = Vec::new();
        let end = c.read_to_end(&mut rest);
        assert!(end.is_ok(), "a FIN: {end:?}");
        assert!(
            pattern_ok(&rest, 1000),
            "the bytes before the cut are intact"
        );
        assert!(crate::wait_until(Duration::from_secs(5), || proxy
            .counts()
            .cut
            == 1));

        let mut c = connect(&proxy);
        wait_live(&proxy, 1);
        proxy.inject(TcpFault::Cut {
            after: 10,
            reset: true,
        });
        let mut rest = Vec::new();
        let err = c.read_to_end(&mut rest).expect_err("a reset");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        assert_eq!(proxy.counts().connections, 2);
    }

    #[test]
    fn a_cut_on_the_next_connection_falls_at_its_first_bytes() {
        let proxy = TcpFaultProxy::start(upstream(true));
        proxy.inject_next(TcpFault::Cut {
            after: 3,
            reset: false,
        });
        let mut c = connect(&proxy);
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, [0, 1, 2]);
    }

    #[test]
    fn a_stall_holds_bytes_and_delivers_them_later() {
        let proxy = TcpFaultProxy::start(upstream(false));
        let mut c = connect(&proxy);
        wait_live(&proxy, 1);
        assert_eq!(proxy.inject(TcpFault::Stall(Duration::from_millis(600))), 1);
        #[allow(clippy::disallowed_methods, reason = "measures the stall")]
        let t = std::time::Instant::now();
        c.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        assert!(
            t.elapsed() >= Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(proxy.counts().stall, 1);
    }

    #[test]
    fn a_trickle_and_a_slow_reader_deliver_everything_slowly() {
        let proxy = TcpFaultProxy::start(upstream(false));
        let data: Vec<u8> = (0..8000).map(|i| (i % 251) as u8).collect();
        let mut c = connect(&proxy);
        wait_live(&proxy, 1);
        proxy.inject(TcpFault::Trickle {
            bytes_per_sec: 8000,
            duration: Duration::from_secs(10),
        });
        #[allow(clippy::disallowed_methods, reason = "measures the rate")]
        let t = std::time::Instant::now();
        c.write_all(&data).unwrap();
        let mut got = vec![0u8; data.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, data);
        assert!(
            t.elapsed() >= Duration::from_millis(700),
            "8000 bytes at 8000 B/s: {:?}",
            t.elapsed()
        );

        let mut c = connect(&proxy);
        wait_live(&proxy, 2);
        proxy.inject(TcpFault::SlowReader {
            chunk: 1000,
            pause: Duration::from_millis(50),
            duration: Duration::from_secs(10),
        });
        #[allow(clippy::disallowed_methods, reason = "measures the pauses")]
        let t = std::time::Instant::now();
        c.write_all(&data).unwrap();
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, data);
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "8 reads, 50 ms apart: {:?}",
            t.elapsed()
        );
        let counts = proxy.counts();
        // Counted once per injection, however many connections it reached (two, the
        // second time).
        assert_eq!((counts.trickle, counts.slow_reader), (1, 1));
    }

    #[test]
    fn a_black_hole_keeps_each_side_open_until_its_peer_closes_it() {
        // An upstream that tells, on a channel, when its connection is closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (closed_tx, closed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_millis(400)))
                .unwrap();
            let mut buf = [0u8; 64];
            // Nothing arrives (the request was swallowed), yet the connection stays open.
            let silent = conn.read(&mut buf).is_err();
            drop(conn);
            closed_tx.send(silent).unwrap();
        });
        let proxy = TcpFaultProxy::start(port);
        let mut c = connect(&proxy);
        wait_live(&proxy, 1);
        assert_eq!(proxy.inject(TcpFault::BlackHole), 1);
        settle();
        c.write_all(b"anyone?").unwrap();
        // The server gives up on its side first; the client's side stays open and silent.
        assert!(
            closed.recv_timeout(Duration::from_secs(5)).unwrap(),
            "the server heard nothing"
        );
        assert_silent(&mut c);
        drop(c);
        assert!(crate::wait_until(Duration::from_secs(5), || {
            proxy.counts().black_hole_given_up.len() == 1
        }));
        assert_eq!(proxy.counts().black_hole, 1);
    }

    #[test]
    fn half_open_answers_nothing_and_times_the_client_giving_up() {
        let proxy = TcpFaultProxy::start(upstream(false));
        let mut c = connect(&proxy);
        wait_live(&proxy, 1);
        assert_eq!(proxy.inject(TcpFault::HalfOpen), 1);
        settle();
        c.write_all(b"anyone?").unwrap();
        assert_silent(&mut c);
        drop(c);
        assert!(crate::wait_until(Duration::from_secs(5), || {
            proxy.counts().half_open_given_up.len() == 1
        }));
        let counts = proxy.counts();
        assert!(counts.half_open_given_up[0] >= Duration::from_millis(300));
        assert_eq!(counts.half_open, 1);
        assert_eq!(counts.total(), 1);
    }
}
