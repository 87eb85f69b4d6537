//! A network that cuts and stalls: one `pgwalrus receive` streams through a slot from a real
//! server, over TLS, through a [`TcpFaultProxy`], while pgbench writes WAL; the proxy
//! injects one fault after another — cuts at a random byte of the server's stream (inside a
//! message, as a FIN or a reset), cuts inside the start-up exchange of the next connection,
//! stalls of both directions, trickles of a few KiB/s, a slow reader, and half-open
//! connections whose server vanished without a FIN.
//!
//! After each fault the receiver catches up with the server by itself: it rides out a stall,
//! a trickle or a slow reader shorter than its receive timeout on the same connection;
//! after a cut it reconnects; a half-open connection it gives up within the receive timeout
//! (3 s here) plus a bound, then reconnects. Each time the archive then holds the server's
//! WAL up to where the server was after the fault, every complete segment byte-identical to
//! `pg_wal`, no gap, and `pgwalrus verify` passes over the WAL around the fault. At the end
//! the receiver stops on SIGTERM with exit 0 and `verify` passes over the whole archive.
//!
//! Every session streams WAL before the next fault, so the reconnect backoff starts over
//! each time (1 s); only a cut inside the start-up exchange costs a second, longer pause.
//! The default run (27 faults) takes 45–60 s per major. `PGWALRUS_SOAK_FAULTS` and
//! `PGWALRUS_SOAK_SECONDS` make it longer (it runs until both are reached), as
//! `bench/soak-network.sh` does; the receiver's resident memory is sampled after each fault
//! and printed with a table of what was injected and checked (docs/reliability.md).
//!
//! Two shorter tests: cuts swept through the first 8 KiB of new connections (the TLS
//! handshake, authentication, the replication commands) must each be a lost connection,
//! never a reason to stop; and a partition while the server stays up is given up at the
//! receive timeout, the slot taken back once the server's walsender lets it go.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use pgwalrus_testkit::{TRUST_USER, TcpFault, TcpFaultProxy, wait_until};

use crate::receive_support::{Fixture, Lsn, PATIENCE, Rng, pgbench, seed};
use crate::support::{Background, Guarded, pgwalrus};

/// `--receive-timeout`, short so that half-open connections are noticed quickly.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long after a half-open fault the receiver may give the connection up at the latest:
/// the timeout counts from the last message heard, just before the fault under load.
const HALF_OPEN_BOUND: Duration = Duration::from_secs(2);

/// Stalls, trickles and slow readers last at most this long: well within the receive
/// timeout (a partly trickled message is not yet a message heard), so the session survives.
const LONGEST_SLOWDOWN_MS: u64 = 1200;

/// The kinds, as the loop cycles them: mostly cuts, which are cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A cut at a random byte of the server's stream, while WAL streams.
    Cut,
    /// A cut of the streaming connection, and of the next one inside its start-up
    /// exchange (TLS and authentication included).
    CutAtStart,
    Stall,
    Trickle,
    HalfOpen,
    SlowReader,
}

const CYCLE: [Kind; 9] = [
    Kind::Cut,
    Kind::Stall,
    Kind::Cut,
    Kind::Trickle,
    Kind::Cut,
    Kind::HalfOpen,
    Kind::CutAtStart,
    Kind::SlowReader,
    Kind::Cut,
];

const ALL: [Kind; 6] = [
    Kind::Cut,
    Kind::CutAtStart,
    Kind::Stall,
    Kind::Trickle,
    Kind::HalfOpen,
    Kind::SlowReader,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cut => "cut mid-stream",
            Kind::CutAtStart => "cut in start-up",
            Kind::Stall => "stall",
            Kind::Trickle => "trickle",
            Kind::HalfOpen => "half-open",
            Kind::SlowReader => "slow reader",
        }
    }

    /// Whether the receiver must leave the connection for a new one.
    fn reconnects(self) -> bool {
        matches!(self, Kind::Cut | Kind::CutAtStart | Kind::HalfOpen)
    }
}

/// Per kind: injected, and the checks that passed after each.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    injected: u64,
    identical: u64,
    verified: u64,
    /// From the injection until the archive held the server's position after it.
    caught_up: Duration,
    slowest: Duration,
}

/// A number from the environment, else `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Streaming sessions the receiver has begun.
fn sessions(r: &Background) -> usize {
    r.stderr().matches("starting log streaming").count()
}

/// `(VmRSS, VmHWM)` of `pid` in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `pgwalrus verify ARCHIVE EXTRA…`, which must find no problem.
#[track_caller]
fn verify(f: &Fixture, extra: &[&str], context: &str) {
    let archive = f.archive.display().to_string();
    let mut args = vec!["verify", archive.as_str()];
    args.extend_from_slice(extra);
    let run = pgwalrus(&f.home, &args, &[]);
    assert!(
        run.code == 0 && run.stdout.contains("no problems"),
        "{context}: verify {extra:?} exited with {}\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
}

#[test]
fn receive_rides_out_cuts_stalls_trickles_slow_readers_and_half_open_connections() {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test reports its own duration and bounds the soak's"
    )]
    let started = Instant::now();
    let faults = env_u64("PGWALRUS_SOAK_FAULTS", CYCLE.len() as u64 * 3);
    let soak_for = Duration::from_secs(env_u64("PGWALRUS_SOAK_SECONDS", 0));
    let mut f = Fixture::small();
    let proxy = TcpFaultProxy::start(f.c.port());
    // TLS (sslmode=prefer takes it), so cuts also fall inside TLS records; the user
    // timeout only shows the keyword is taken (loopback acknowledges everything).
    f.conninfo = format!(
        "host=127.0.0.1 port={} user={TRUST_USER} tcp_user_timeout=10000",
        proxy.port()
    );
    let mut rng = Rng::new(seed(0x6e65_7477));
    let timeout = RECEIVE_TIMEOUT.as_secs().to_string();
    let mut r = f.receive(&[
        "-S",
        "walrus_network",
        "--create-slot",
        "--if-not-exists",
        "--receive-timeout",
        &timeout,
    ]);
    f.wait_streaming("pgwalrus", &r);
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    let first = f.current_lsn();
    // WAL flows all the time, so a fault always falls on a live stream.
    let mut load = Guarded::spawn(
        f.c.pgbench(&["-n", "-N", "-c", "1", "-R", "100", "-T", "86400"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    let mut tally = [Tally::default(); ALL.len()];
    let mut half_open_given_up: Vec<Duration> = Vec::new();
    // (seconds since the start, VmRSS KiB) after each fault, and the peak (VmHWM).
    let mut rss: Vec<(u64, u64)> = Vec::new();
    let mut rss_peak = 0;
    let mut i = 0u64;
    while i < faults || started.elapsed() < soak_for {
        let kind = CYCLE[(i % CYCLE.len() as u64) as usize];
        let context = format!("fault {i} ({})", kind.name());
        let before = f.current_lsn();
        let sessions_before = sessions(&r);
        let counts = proxy.counts();
        #[allow(clippy::disallowed_methods, reason = "how long the catch-up took")]
        let injected_at = Instant::now();
        match kind {
            Kind::Cut | Kind::CutAtStart => {
                let mut cuts = 1;
                if kind == Kind::CutAtStart {
                    // The TLS handshake and the start-up exchange: a few KiB.
                    proxy.inject_next(TcpFault::Cut {
                        after: rng.range(0, 6000),
                        reset: rng.range(0, 2) == 0,
                    });
                    cuts = 2;
                }
                let fault = TcpFault::Cut {
                    after: rng.range(0, 192 * 1024),
                    reset: rng.range(0, 2) == 0,
                };
                assert_eq!(proxy.inject(fault), 1, "{context}: one live connection");
                // More WAL than the cut lets through, whatever the load did meanwhile.
                f.load(256);
                assert!(
                    wait_until(PATIENCE, || proxy.counts().cut >= counts.cut + cuts),
                    "{context}: {fault:?} did not happen: {:?}",
                    proxy.counts()
                );
            }
            Kind::Stall => {
                let d = Duration::from_millis(rng.range(300, LONGEST_SLOWDOWN_MS));
                assert_eq!(proxy.inject(TcpFault::Stall(d)), 1, "{context}");
                f.load(128);
                std::thread::sleep(d);
            }
            Kind::Trickle => {
                let duration = Duration::from_millis(rng.range(300, LONGEST_SLOWDOWN_MS));
                let fault = TcpFault::Trickle {
                    bytes_per_sec: u32::try_from(rng.range(2048, 16 * 1024)).unwrap(),
                    duration,
                };
                assert_eq!(proxy.inject(fault), 1, "{context}");
                f.load(128);
                std::thread::sleep(duration);
            }
            Kind::SlowReader => {
                let duration = Duration::from_millis(rng.range(300, LONGEST_SLOWDOWN_MS));
                let fault = TcpFault::SlowReader {
                    chunk: usize::try_from(rng.range(4096, 32 * 1024)).unwrap(),
                    pause: Duration::from_millis(rng.range(50, 300)),
                    duration,
                };
                assert_eq!(proxy.inject(fault), 1, "{context}");
                f.load(256);
                std::thread::sleep(duration);
            }
            Kind::HalfOpen => {
                assert_eq!(proxy.inject(TcpFault::HalfOpen), 1, "{context}");
                f.load(64);
                let bound = RECEIVE_TIMEOUT + HALF_OPEN_BOUND;
                let n = counts.half_open_given_up.len();
                assert!(
                    wait_until(bound + Duration::from_secs(1), || proxy
                        .counts()
                        .half_open_given_up
                        .len()
                        > n),
                    "{context}: the receiver still holds the black-holed connection after \
                     {bound:?}\n--- receiver stderr\n{}",
                    r.stderr()
                );
                let after = proxy.counts().half_open_given_up[n];
                assert!(
                    after >= RECEIVE_TIMEOUT / 2 && after <= bound,
                    "{context}: given up after {after:?}, receive timeout {RECEIVE_TIMEOUT:?}"
                );
                half_open_given_up.push(after);
            }
        }

        // The server's position after the fault; the archive must come to hold it.
        let target = f.load(32);
        f.wait_archived(target, &r);
        let caught_up = injected_at.elapsed();
        assert!(
            r.is_running(),
            "{context}: the receiver exited\n--- receiver stderr\n{}",
            r.stderr()
        );
        let sessions_after = sessions(&r);
        if kind.reconnects() {
            assert!(
                sessions_after > sessions_before,
                "{context}: no new session\n--- receiver stderr\n{}",
                r.stderr()
            );
        } else {
            assert_eq!(
                sessions_after,
                sessions_before,
                "{context}: a slowdown shorter than the receive timeout ended the session\n\
                 --- receiver stderr\n{}",
                r.stderr()
            );
        }
        let t = &mut tally[ALL.iter().position(|k| *k == kind).unwrap()];
        t.injected += 1;
        t.caught_up += caught_up;
        t.slowest = t.slowest.max(caught_up);
        f.assert_complete_and_identical(0);
        t.identical += 1;
        // The WAL around the fault, from the start of the segment it fell in.
        let from = Lsn(before.0 - before.0 % f.seg_size).to_string();
        verify(
            &f,
            &["--start", &from, "--end", &target.to_string()],
            &context,
        );
        t.verified += 1;

        let (now, hwm) = rss_kib(r.pid());
        rss.push((started.elapsed().as_secs(), now));
        rss_peak = rss_peak.max(hwm);
        i += 1;
    }

    load.kill9();
    let end = f.switch();
    f.wait_archived(end, &r);
    let log = r.stderr();
    let sessions = log.matches("starting log streaming").count();
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    let compared = f.assert_complete_and_identical(1);
    verify(&f, &[], "the whole archive");

    // The proxy saw what the loop injected.
    let counts = proxy.counts();
    let of = |kind: Kind| tally[ALL.iter().position(|k| *k == kind).unwrap()].injected;
    assert_eq!(
        counts.cut,
        of(Kind::Cut) + 2 * of(Kind::CutAtStart),
        "{counts:?}"
    );
    assert_eq!(counts.stall, of(Kind::Stall), "{counts:?}");
    assert_eq!(counts.trickle, of(Kind::Trickle), "{counts:?}");
    assert_eq!(counts.slow_reader, of(Kind::SlowReader), "{counts:?}");
    assert_eq!(counts.half_open, of(Kind::HalfOpen), "{counts:?}");
    assert_eq!(counts.total(), i + of(Kind::CutAtStart), "{counts:?}");
    assert!(
        log.contains("receive timeout") || of(Kind::HalfOpen) == 0,
        "half-open connections are given up as a receive timeout:\n{log}"
    );

    let mut table = String::from(
        "| fault | injected | new session after each | caught up after (mean, max) | archive = pg_wal after each | verify after each | WAL lost |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (kind, t) in ALL.iter().zip(&tally) {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {:.1} s, {:.1} s | {} | {} | 0 bytes |",
            kind.name(),
            t.injected,
            if kind.reconnects() {
                "yes"
            } else {
                "no (same session)"
            },
            t.caught_up.as_secs_f64() / t.injected.max(1) as f64,
            t.slowest.as_secs_f64(),
            t.identical,
            t.verified
        );
    }
    // Ten samples spread over the run: flat, or growing.
    let step = rss.len().div_ceil(10).max(1);
    let mut picked: Vec<usize> = (0..rss.len()).step_by(step).collect();
    if let Some(last) = rss.len().checked_sub(1)
        && picked.last() != Some(&last)
    {
        picked.push(last);
    }
    let samples: Vec<String> = picked
        .iter()
        .map(|&n| {
            let (at, kib) = rss[n];
            format!("{}:{:02} {kib}", at / 60, at % 60)
        })
        .collect();
    let (lo, hi) = (
        half_open_given_up.iter().min().copied().unwrap_or_default(),
        half_open_given_up.iter().max().copied().unwrap_or_default(),
    );
    #[allow(
        clippy::print_stderr,
        reason = "what the loop covered and how long it took"
    )]
    {
        eprintln!(
            "{i} network faults ({} proxy faults: {} cuts, {} stalls, {} trickles, {} slow readers, \
             {} half-open given up after {lo:.1?}..{hi:.1?}), {sessions} sessions, {} MiB of WAL \
             from {first}, {compared} segments compared at the end, {:.1?}\n\
             receiver RSS (min:s KiB) {}; peak (VmHWM) {rss_peak} KiB\n{table}",
            counts.total(),
            counts.cut,
            counts.stall,
            counts.trickle,
            counts.slow_reader,
            counts.half_open,
            (f.current_lsn().0 - first.0) >> 20,
            started.elapsed(),
            samples.join(", ")
        );
    }
}

/// A connection cut anywhere in its first bytes — the answer to the SSLRequest, the TLS
/// handshake, authentication, the replication commands — is a lost connection, to be
/// retried, never a reason to stop: with `sslmode=require` and `--no-loop`, every such cut
/// ends the run with exit 1 (a connection problem), not 2 (settings that cannot work).
#[test]
fn a_cut_inside_the_tls_handshake_or_the_startup_exchange_is_a_lost_connection() {
    let mut f = Fixture::small();
    let proxy = TcpFaultProxy::start(f.c.port());
    f.conninfo = format!(
        "host=127.0.0.1 port={} user={TRUST_USER} sslmode=require",
        proxy.port()
    );
    let mut rng = Rng::new(seed(0x7473_6c63));
    let mut codes = Vec::new();
    // Every 128 bytes or so through the TLS handshake (about 1.5 KiB), authentication and
    // the replication commands, then every 512 bytes into streaming; FIN and reset in turn.
    let sweep = (0..4096u64)
        .step_by(128)
        .map(|at| (at, 128))
        .chain((4096..8192u64).step_by(512).map(|at| (at, 512)));
    for (n, (at, step)) in sweep.enumerate() {
        let after = at + rng.range(0, step);
        proxy.inject_next(TcpFault::Cut {
            after,
            reset: n % 2 == 1,
        });
        let mut r = f.receive(&["--no-loop"]);
        // WAL to stream, in case the cut falls after the start-up exchange.
        wait_until(PATIENCE, || {
            if !r.is_running() {
                return true;
            }
            f.load(8);
            false
        });
        let code = r.wait(PATIENCE);
        assert_eq!(
            code,
            1,
            "cut after {after} bytes: expected exit 1 (connection lost)\n--- stderr\n{}",
            r.stderr()
        );
        // The error the run ended with, without the port: where the cut fell.
        let err = r.stderr();
        let last = err
            .lines()
            .rev()
            .find(|l| l.contains("error"))
            .unwrap_or("");
        codes.push((after, last.replace(&proxy.port().to_string(), "PORT")));
    }
    assert_eq!(proxy.counts().cut, codes.len() as u64);
    let mut seen: Vec<(String, Vec<u64>)> = Vec::new();
    for (after, error) in codes {
        match seen.iter_mut().find(|(e, _)| *e == error) {
            Some((_, at)) => at.push(after),
            None => seen.push((error, vec![after])),
        }
    }
    #[allow(clippy::print_stderr, reason = "where the cuts fell")]
    for (error, at) in &seen {
        eprintln!("cut after {at:?} bytes: {error}");
    }
    // And without a cut the same settings stream.
    let mut r = f.receive(&[]);
    let lsn = f.load(64);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
}

/// A partition while the server stays up: the proxy black-holes the streaming connection
/// both ways and tells neither side. The receiver gives it up at its receive timeout; the
/// server's walsender lives on until its own `wal_sender_timeout` (10 s here) and holds the
/// slot meanwhile, so the receiver's first reconnects are refused (`replication slot … is
/// active for PID …`). Those are retried with backoff until the server lets the slot go;
/// then the receiver catches up with no gap.
#[test]
fn a_partition_is_given_up_and_the_slot_taken_back_once_the_server_lets_it_go() {
    let mut f = Fixture::new(
        crate::receive_support::small_cluster()
            .setting("wal_sender_timeout", "10s")
            .start(),
    );
    let proxy = TcpFaultProxy::start(f.c.port());
    f.conninfo = format!("host=127.0.0.1 port={} user={TRUST_USER}", proxy.port());
    let timeout = RECEIVE_TIMEOUT.as_secs().to_string();
    let mut r = f.receive(&[
        "-S",
        "walrus_partition",
        "--create-slot",
        "--if-not-exists",
        "--receive-timeout",
        &timeout,
    ]);
    f.wait_streaming("pgwalrus", &r);
    let lsn = f.load(64);
    f.wait_archived(lsn, &r);
    let sessions_before = sessions(&r);

    #[allow(clippy::disallowed_methods, reason = "how long the recovery took")]
    let injected_at = Instant::now();
    assert_eq!(proxy.inject(TcpFault::BlackHole), 1);
    f.load(64);
    let bound = RECEIVE_TIMEOUT + HALF_OPEN_BOUND;
    assert!(
        wait_until(bound + Duration::from_secs(1), || !proxy
            .counts()
            .black_hole_given_up
            .is_empty()),
        "the receiver still holds the black-holed connection after {bound:?}\n{}",
        r.stderr()
    );
    let given_up = proxy.counts().black_hole_given_up[0];
    assert!(given_up <= bound, "given up after {given_up:?}");

    let target = f.load(64);
    f.wait_archived(target, &r);
    let caught_up = injected_at.elapsed();
    assert!(r.is_running(), "{}", r.stderr());
    let log = r.stderr();
    assert!(sessions(&r) > sessions_before, "{log}");
    assert!(log.contains("receive timeout"), "{log}");
    assert!(
        log.contains("is active for PID"),
        "the first reconnect comes while the old walsender still holds the slot:\n{log}"
    );
    f.assert_complete_and_identical(0);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    verify(&f, &[], "after the partition");
    #[allow(clippy::print_stderr, reason = "how the recovery went")]
    {
        eprintln!(
            "partition: given up after {given_up:.1?}, caught up {caught_up:.1?} after the fault"
        );
    }
}
