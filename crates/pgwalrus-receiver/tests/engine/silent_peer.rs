//! A connection whose server side goes silent without a FIN (traffic black-holed by a
//! proxy between the engine and a real server): the engine asks for a reply at half the
//! receive timeout, gives the connection up at the timeout, reconnects, and the archive has
//! no gap.

use std::io::{Read, Write};
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgwalrus_client::config::{Config, Host, HostSpec};
use pgwalrus_receiver::{FromStreams, ReceiveSettings, Shutdown, State, Stopped};
use pgwalrus_testkit::{TRUST_USER, TempDir, wait_until};

use crate::support::{assert_identical_to_pg_wal, current_lsn, load_and_switch, small_cluster};

/// A TCP proxy to `upstream` on 127.0.0.1; while `black_hole` is set, the connections it
/// carries swallow every byte in both directions and stay open.
struct Proxy {
    port: u16,
    black_hole: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("address").port();
        let black_hole = Arc::new(AtomicBool::new(false));
        let hole = black_hole.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (from, to) in [
                    (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    ),
                    (server, client),
                ] {
                    let hole = hole.clone();
                    std::thread::spawn(move || pump(from, to, &hole));
                }
            }
        });
        Proxy { port, black_hole }
    }
}

/// Copies `from` to `to` until either side closes; drops what arrives while `hole` is set.
fn pump(mut from: TcpStream, mut to: TcpStream, hole: &AtomicBool) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if hole.load(Ordering::Relaxed) {
                    continue;
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(NetShutdown::Write);
}

#[test]
fn a_black_holed_connection_is_given_up_after_the_receive_timeout_and_nothing_is_lost() {
    let c = small_cluster().start();
    let proxy = Proxy::start(c.port());
    let archive = TempDir::new("silent-peer");
    let config = Config::from_conninfo(&format!(
        "user={TRUST_USER} replication=true dbname=replication"
    ))
    .expect("conninfo");
    let host = HostSpec {
        host: Host::Tcp("127.0.0.1".to_owned()),
        hostaddr: None,
        port: proxy.port,
    };
    let address = format!("127.0.0.1:{}", proxy.port);
    let source = FromStreams::new(config, host, move || {
        tokio::net::TcpStream::connect(address.clone())
    });
    let mut settings = ReceiveSettings::new(archive.path());
    settings.receive_timeout = Some(Duration::from_secs(4));
    settings.status_interval = Some(Duration::from_secs(1));
    let (stop, shutdown) = Shutdown::new();
    let engine = pgwalrus_receiver::spawn("silent-peer", settings, source, shutdown)
        .expect("spawn the engine");
    let status = engine.status();
    assert!(wait_until(Duration::from_secs(30), || status
        .borrow()
        .state
        == State::Streaming));
    load_and_switch(&c);
    let before = current_lsn(&c);
    assert!(wait_until(Duration::from_secs(30), || status
        .borrow()
        .flushed_lsn
        >= before));

    // The network swallows everything; the server's side never closes.
    proxy.black_hole.store(true, Ordering::Relaxed);
    load_and_switch(&c);
    assert!(
        wait_until(Duration::from_secs(15), || status.borrow().state
            != State::Streaming),
        "the engine still thinks it is streaming 15 s into a 4 s receive timeout: {:?}",
        status.borrow()
    );
    let error = status.borrow().last_error.clone().unwrap_or_default();
    assert!(error.contains("receive timeout"), "{error}");
    // The network comes back; new connections go through.
    proxy.black_hole.store(false, Ordering::Relaxed);
    load_and_switch(&c);
    let after = current_lsn(&c);
    assert!(
        wait_until(Duration::from_secs(30), || status.borrow().flushed_lsn
            >= after),
        "the engine did not catch up after the network came back: {:?}",
        status.borrow()
    );
    stop.trigger();
    assert!(matches!(engine.join(), Ok(Stopped::Shutdown { .. })));
    assert!(assert_identical_to_pg_wal(&c, archive.path()) >= 3);
}
