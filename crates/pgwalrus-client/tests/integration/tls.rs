//! TLS: every `sslmode`, certificate verification, client certificates, direct TLS.

use pgwalrus_client::AuthMethod;
use pgwalrus_testkit::{CERT_USER, PASSWORD, TLSONLY_USER, TRUST_USER};

use crate::support::{chain, cluster, connect_err, connect_ok, repl};

#[tokio::test]
async fn sslmodes() {
    let c = cluster();
    let ca = c.tls().ca_cert.display().to_string();
    let conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=disable")).await;
    assert!(conn.tls().is_none());
    // allow: plain first, and the server accepts plain for this role.
    let conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=allow")).await;
    assert!(conn.tls().is_none());
    // prefer: TLS when the server has it.
    let conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=prefer")).await;
    assert!(conn.tls().is_some());
    let conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=require")).await;
    let tls = conn.tls().unwrap();
    assert!(tls.protocol.starts_with("TLSv1"), "{tls:?}");
    assert!(tls.cipher_suite.starts_with("TLS"), "{tls:?}");
    assert!(!tls.direct);
    // verify-ca: the chain is checked, not the name.
    let conn = connect_ok(&repl(
        &c,
        TRUST_USER,
        &format!("sslmode=verify-ca sslrootcert={ca}"),
    ))
    .await;
    assert!(conn.tls().is_some());
    // verify-full: the name is checked too.
    let conn = connect_ok(&format!(
        "host=localhost hostaddr=127.0.0.1 port={} user={TRUST_USER} dbname=replication replication=true sslmode=verify-full sslrootcert={ca}",
        c.port()
    ))
    .await;
    assert!(conn.tls().is_some());
}

#[tokio::test]
async fn verify_full_names_the_certificate_mismatch() {
    let c = cluster();
    let ca = c.tls().ca_cert.display().to_string();
    let e = connect_err(&repl(
        &c,
        TRUST_USER,
        &format!("sslmode=verify-full sslrootcert={ca}"),
    ))
    .await;
    let text = chain(&e);
    assert!(text.contains(&format!("127.0.0.1:{}", c.port())), "{text}");
    assert!(text.contains("not valid for name"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!e.is_auth_failure() && !e.is_transient(), "{text}");
}

#[tokio::test]
async fn verification_against_the_wrong_ca_fails() {
    let c = cluster();
    let other = c.tls().other_ca_cert.display().to_string();
    for mode in ["verify-ca", "verify-full"] {
        let e = connect_err(&format!(
            "host=localhost hostaddr=127.0.0.1 port={} user={TRUST_USER} dbname=replication sslmode={mode} sslrootcert={other}",
            c.port()
        ))
        .await;
        assert!(chain(&e).contains("TLS handshake"), "{}", chain(&e));
    }
}

#[tokio::test]
async fn client_certificate_authentication() {
    let c = cluster();
    let t = c.tls();
    let conn = connect_ok(&repl(
        &c,
        CERT_USER,
        &format!(
            "sslmode=verify-ca sslrootcert={} sslcert={} sslkey={}",
            t.ca_cert.display(),
            t.client_cert.display(),
            t.client_key.display()
        ),
    ))
    .await;
    assert_eq!(conn.auth_method(), AuthMethod::None);
    assert_eq!(conn.parameter("session_authorization"), Some(CERT_USER));
    // Without the certificate the server refuses.
    let e = connect_err(&repl(&c, CERT_USER, "sslmode=require")).await;
    assert!(e.is_auth_failure(), "{e}");
}

#[tokio::test]
async fn tls_only_role() {
    let c = cluster();
    let e = connect_err(&repl(
        &c,
        TLSONLY_USER,
        &format!("sslmode=disable password={PASSWORD}"),
    ))
    .await;
    assert!(e.is_auth_failure(), "{e}");
    assert_eq!(e.server_error().unwrap().code().code(), "28000", "{e}");
    // sslmode=allow: the plain attempt is rejected, the TLS retry succeeds (as libpq).
    let conn = connect_ok(&repl(
        &c,
        TLSONLY_USER,
        &format!("sslmode=allow password={PASSWORD}"),
    ))
    .await;
    assert!(conn.tls().is_some());
    assert_eq!(conn.auth_method(), AuthMethod::ScramSha256Plus);
}

#[tokio::test]
async fn require_fails_against_a_server_without_tls() {
    let c = pgwalrus_testkit::Cluster::builder(&crate::support::pg())
        .setting("ssl", "off")
        .start();
    let e = connect_err(&repl(&c, TRUST_USER, "sslmode=require")).await;
    assert!(
        e.to_string()
            .contains("server does not support SSL, but SSL was required"),
        "{e}"
    );
    // prefer falls back to plain on the same connection.
    let conn = connect_ok(&repl(&c, TRUST_USER, "sslmode=prefer")).await;
    assert!(conn.tls().is_none());
}

#[tokio::test]
async fn direct_tls() {
    let c = cluster();
    let conninfo = repl(&c, TRUST_USER, "sslmode=require sslnegotiation=direct");
    if c.major() >= 17 {
        let conn = connect_ok(&conninfo).await;
        assert!(conn.tls().unwrap().direct);
    } else {
        // Servers before 17 expect a startup packet, not a TLS ClientHello.
        let e = connect_err(&conninfo).await;
        assert!(!e.is_auth_failure(), "{e}");
    }
}
