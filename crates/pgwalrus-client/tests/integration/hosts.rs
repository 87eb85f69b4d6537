//! Where connections go: refused ports, time-outs, host lists, `target_session_attrs`,
//! unix sockets, and caller-supplied streams.

use std::time::Duration;

use pgwalrus_client::Connection;
use pgwalrus_client::config::{Host, HostSpec};
use pgwalrus_testkit::{Cluster, PASSWORD, SCRAM_USER, TRUST_USER};

use crate::support::{cluster, config, connect_err, connect_ok, dead_port, pg, repl, within};

#[tokio::test]
async fn refused_port_names_the_address() {
    let port = dead_port();
    let e = connect_err(&format!(
        "host=127.0.0.1 port={port} user={TRUST_USER} sslmode=disable"
    ))
    .await;
    assert!(e.is_connection_refused(), "{e}");
    assert!(e.is_transient(), "{e}");
    assert!(!e.is_auth_failure() && !e.is_timeout(), "{e}");
    assert_eq!(
        e.to_string(),
        format!("connection to 127.0.0.1:{port} failed: connection refused")
    );
}

#[tokio::test]
async fn timeout_names_the_address() {
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let started = tokio::time::Instant::now();
    let e = connect_err(&format!(
        "host=127.0.0.1 port={port} user={TRUST_USER} connect_timeout=2"
    ))
    .await;
    assert!(e.is_timeout(), "{e}");
    assert!(e.is_transient(), "{e}");
    assert_eq!(
        e.to_string(),
        format!("connection to 127.0.0.1:{port} failed: timeout after 2s")
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn falls_back_to_the_next_host_and_lists_all_failures() {
    let c = cluster();
    let dead = dead_port();
    let conn = connect_ok(&format!(
        "host=127.0.0.1,127.0.0.1 port={dead},{} user={TRUST_USER} dbname=replication replication=true sslmode=disable",
        c.port()
    ))
    .await;
    assert_eq!(conn.host().port, c.port());
    assert_eq!(conn.target(), format!("127.0.0.1:{}", c.port()));

    // Every host failing: each failure is listed, in order.
    let dead2 = dead_port();
    let e = connect_err(&format!(
        "host=127.0.0.1,127.0.0.1,127.0.0.1 port={dead},{dead2},{} user={SCRAM_USER} password=wrong dbname=replication sslmode=disable",
        c.port()
    ))
    .await;
    let text = e.to_string();
    let first = text
        .find(&format!("127.0.0.1:{dead} failed: connection refused"))
        .expect(&text);
    let second = text
        .find(&format!("127.0.0.1:{dead2} failed: connection refused"))
        .expect(&text);
    let third = text
        .find(&format!(
            "127.0.0.1:{} failed: FATAL:  password authentication failed",
            c.port()
        ))
        .expect(&text);
    assert!(first < second && second < third, "{text}");
    assert!(e.is_auth_failure());
    assert!(!e.is_connection_refused());
    assert_eq!(e.server_error().unwrap().code().code(), "28P01");
    // All refused.
    let e = connect_err(&format!(
        "host=127.0.0.1,127.0.0.1 port={dead},{dead2} user={TRUST_USER}"
    ))
    .await;
    assert!(e.is_connection_refused() && e.is_transient(), "{e}");
}

#[tokio::test]
async fn target_session_attrs_read_write_skips_a_read_only_server() {
    let pg = pg();
    let read_only = Cluster::builder(&pg)
        .setting("default_transaction_read_only", "on")
        .start();
    let writable = Cluster::builder(&pg).start();
    let hosts = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user={TRUST_USER} dbname=replication replication=true sslmode=disable",
        read_only.port(),
        writable.port()
    );
    let conn = connect_ok(&format!("{hosts} target_session_attrs=read-write")).await;
    assert_eq!(conn.host().port, writable.port());
    let conn = connect_ok(&format!("{hosts} target_session_attrs=read-only")).await;
    assert_eq!(conn.host().port, read_only.port());
    let conn = connect_ok(&format!("{hosts} target_session_attrs=any")).await;
    assert_eq!(conn.host().port, read_only.port());
    // Neither is a standby.
    let e = connect_err(&format!("{hosts} target_session_attrs=standby")).await;
    assert!(
        e.to_string().contains("server is not in hot standby mode"),
        "{e}"
    );
    let conn = connect_ok(&format!("{hosts} target_session_attrs=prefer-standby")).await;
    assert_eq!(conn.host().port, read_only.port());
    let conn = connect_ok(&format!("{hosts} target_session_attrs=primary")).await;
    assert_eq!(conn.host().port, read_only.port());
    // Only the read-only one: named in the error.
    let e = connect_err(&format!(
        "host=127.0.0.1 port={} user={TRUST_USER} dbname=replication replication=true sslmode=disable target_session_attrs=read-write",
        read_only.port()
    ))
    .await;
    assert_eq!(
        e.to_string(),
        format!(
            "connection to 127.0.0.1:{} failed: session is read-only",
            read_only.port()
        )
    );
}

#[tokio::test]
async fn unix_socket() {
    let c = cluster();
    let mut conn = connect_ok(&format!(
        "{} replication=true",
        c.socket_conninfo(TRUST_USER)
    ))
    .await;
    let expected = c.socket_dir().join(format!(".s.PGSQL.{}", c.port()));
    assert_eq!(conn.target(), expected.display().to_string());
    assert!(conn.tls().is_none(), "no TLS over unix sockets");
    assert_eq!(
        conn.identify_system().await.unwrap().system_id,
        c.system_identifier()
    );
    // SCRAM over the socket (the harness allows it there).
    let conn = connect_ok(&format!(
        "{} replication=true password={PASSWORD}",
        c.socket_conninfo(SCRAM_USER)
    ))
    .await;
    assert_eq!(conn.auth_method(), pgwalrus_client::AuthMethod::ScramSha256);
    // A socket directory where nothing listens.
    let e = connect_err(&format!(
        "host={} port={} user={TRUST_USER}",
        c.root_dir().display(),
        c.port()
    ))
    .await;
    assert!(
        e.to_string().contains(&format!(".s.PGSQL.{}", c.port())),
        "{e}"
    );
}

#[tokio::test]
async fn handshake_over_a_caller_supplied_stream() {
    let c = cluster();
    let cfg = config(&repl(
        &c,
        SCRAM_USER,
        &format!("password={PASSWORD} sslmode=require"),
    ));
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", c.port()))
        .await
        .unwrap();
    let mut conn = within(Connection::handshake(stream, &cfg, &cfg.hosts[0]))
        .await
        .unwrap();
    assert!(conn.tls().is_some());
    assert_eq!(
        conn.auth_method(),
        pgwalrus_client::AuthMethod::ScramSha256Plus
    );
    assert_eq!(
        conn.identify_system().await.unwrap().system_id,
        c.system_identifier()
    );
    assert!(conn.server_version_num() >= 140_000);
    assert_eq!(conn.server_version_num() / 10_000, c.major());

    // A unix stream works the same way.
    let path = c.socket_dir().join(format!(".s.PGSQL.{}", c.port()));
    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let host = HostSpec {
        host: Host::Unix(c.socket_dir().to_owned()),
        hostaddr: None,
        port: c.port(),
    };
    let cfg = config(&format!(
        "{} replication=true",
        c.socket_conninfo(TRUST_USER)
    ));
    let conn = within(Connection::handshake(stream, &cfg, &host))
        .await
        .unwrap();
    assert_eq!(conn.target(), path.display().to_string());
}
