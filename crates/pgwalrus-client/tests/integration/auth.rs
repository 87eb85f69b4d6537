//! Authentication: every method the harness configures, wrong and missing passwords,
//! `.pgpass`, a role without REPLICATION, and channel binding.

use pgwalrus_client::AuthMethod;
use pgwalrus_testkit::{
    MD5_USER, NOREPL_USER, PASSWORD, PASSWORD_USER, SCRAM_USER, TLSONLY_USER, TRUST_USER,
};

use crate::support::{chain, cluster, connect_err, connect_ok, passfile, repl};

#[tokio::test]
async fn each_method_authenticates() {
    let c = cluster();
    let cases = [
        (TRUST_USER, "", AuthMethod::None),
        (PASSWORD_USER, "", AuthMethod::Cleartext),
        (MD5_USER, "", AuthMethod::Md5),
        (SCRAM_USER, "", AuthMethod::ScramSha256),
        // With TLS, SCRAM binds to the channel by default (channel_binding=prefer).
        (SCRAM_USER, "sslmode=require", AuthMethod::ScramSha256Plus),
    ];
    for (user, extra, method) in cases {
        let tls = if extra.is_empty() {
            "sslmode=disable"
        } else {
            extra
        };
        let mut conn = connect_ok(&repl(&c, user, &format!("password={PASSWORD} {tls}"))).await;
        assert_eq!(conn.auth_method(), method, "{user} {extra}");
        assert_eq!(conn.parameter("session_authorization"), Some(user));
        // The session works: a replication command answers.
        assert_eq!(
            conn.identify_system().await.unwrap().system_id,
            c.system_identifier()
        );
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn wrong_password_fails_with_the_servers_message() {
    let c = cluster();
    for user in [PASSWORD_USER, MD5_USER, SCRAM_USER] {
        let e = connect_err(&repl(&c, user, "password=wrong sslmode=disable")).await;
        assert!(e.is_auth_failure(), "{user}: {e}");
        assert!(!e.is_transient(), "{user}: {e}");
        let server = e
            .server_error()
            .unwrap_or_else(|| panic!("{user}: no server error in {e}"));
        assert_eq!(server.code().code(), "28P01");
        let text = chain(&e);
        assert!(
            text.contains(&format!(
                "FATAL:  password authentication failed for user \"{user}\""
            )),
            "{text}"
        );
        assert!(text.contains(&format!("127.0.0.1:{}", c.port())), "{text}");
    }
}

#[tokio::test]
async fn prefer_retries_without_tls_after_a_rejection_like_libpq() {
    // sslmode=prefer (the default): the TLS attempt is rejected, then libpq retries
    // without TLS, which fails the same way; both failures are reported.
    let c = cluster();
    let e = connect_err(&repl(&c, SCRAM_USER, "password=wrong")).await;
    assert!(e.is_auth_failure());
    let text = chain(&e);
    assert_eq!(
        text.matches("password authentication failed").count(),
        2,
        "{text}"
    );
}

#[tokio::test]
async fn missing_password_is_an_auth_failure() {
    let c = cluster();
    let e = connect_err(&repl(&c, SCRAM_USER, "sslmode=disable")).await;
    assert!(e.is_auth_failure(), "{e}");
    assert!(chain(&e).contains("no password supplied"), "{}", chain(&e));
    // Trust needs none, and the password file is never consulted for it.
    connect_ok(&repl(
        &c,
        TRUST_USER,
        "sslmode=disable passfile=/nonexistent/pgpass",
    ))
    .await;
}

#[tokio::test]
async fn pgpass_supplies_the_password_when_asked() {
    let c = cluster();
    let dir = c.root_dir();
    let line = format!(
        "127.0.0.1:{}:replication:{SCRAM_USER}:{PASSWORD}\n",
        c.port()
    );
    let good = passfile(
        dir,
        &format!("# comment\n127.0.0.1:*:*:nobody:x\n{line}"),
        0o600,
    );
    let conn = connect_ok(&repl(
        &c,
        SCRAM_USER,
        &format!("sslmode=disable passfile={}", good.display()),
    ))
    .await;
    assert_eq!(conn.auth_method(), AuthMethod::ScramSha256);
    // Group/world-readable: ignored (with a warning), so no password.
    let open = passfile(dir, &line, 0o644);
    let e = connect_err(&repl(
        &c,
        SCRAM_USER,
        &format!("sslmode=disable passfile={}", open.display()),
    ))
    .await;
    assert!(chain(&e).contains("no password supplied"), "{}", chain(&e));
    // An explicit password wins over the file.
    let bad = passfile(dir, "*:*:*:*:wrong\n", 0o600);
    connect_ok(&repl(
        &c,
        MD5_USER,
        &format!(
            "sslmode=disable password={PASSWORD} passfile={}",
            bad.display()
        ),
    ))
    .await;
}

#[tokio::test]
async fn role_without_replication_gets_the_servers_permission_error() {
    let c = cluster();
    let e = connect_err(&repl(&c, NOREPL_USER, "sslmode=disable")).await;
    let server = e
        .server_error()
        .unwrap_or_else(|| panic!("no server error: {e}"));
    assert_eq!(server.code().code(), "42501", "{e}");
    assert!(
        chain(&e).to_lowercase().contains("replication"),
        "{}",
        chain(&e)
    );
    assert!(!e.is_auth_failure(), "{e}");
    // The same role may open an ordinary session.
    connect_ok(&format!(
        "{} dbname=postgres sslmode=disable",
        c.conninfo(NOREPL_USER)
    ))
    .await;
}

#[tokio::test]
async fn channel_binding_require() {
    let c = cluster();
    // SCRAM over TLS: bound.
    let conn = connect_ok(&repl(
        &c,
        SCRAM_USER,
        &format!("password={PASSWORD} sslmode=require channel_binding=require"),
    ))
    .await;
    assert_eq!(conn.auth_method(), AuthMethod::ScramSha256Plus);
    assert!(conn.tls().is_some());
    // Also for the TLS-only role.
    let conn = connect_ok(&repl(
        &c,
        TLSONLY_USER,
        &format!(
            "password={PASSWORD} sslmode=verify-ca sslrootcert={} channel_binding=require",
            c.tls().ca_cert.display()
        ),
    ))
    .await;
    assert_eq!(conn.auth_method(), AuthMethod::ScramSha256Plus);

    // Without TLS.
    let e = connect_err(&repl(
        &c,
        SCRAM_USER,
        &format!("password={PASSWORD} sslmode=disable channel_binding=require"),
    ))
    .await;
    assert!(
        chain(&e).contains("channel binding required, but SSL not in use"),
        "{}",
        chain(&e)
    );
    // MD5 cannot bind: refused before any password is sent.
    let e = connect_err(&repl(
        &c,
        MD5_USER,
        &format!("password={PASSWORD} sslmode=require channel_binding=require"),
    ))
    .await;
    assert!(
        chain(&e).contains(
            "channel binding required but not supported by server's authentication request"
        ),
        "{}",
        chain(&e)
    );
    // Cleartext likewise.
    let e = connect_err(&repl(
        &c,
        PASSWORD_USER,
        &format!("password={PASSWORD} sslmode=require channel_binding=require"),
    ))
    .await;
    assert!(
        chain(&e).contains("not supported by server's authentication request"),
        "{}",
        chain(&e)
    );
    // Trust lets us in without any exchange: refused as well.
    let e = connect_err(&repl(
        &c,
        TRUST_USER,
        "sslmode=require channel_binding=require",
    ))
    .await;
    assert!(
        chain(&e).contains(
            "channel binding required, but server authenticated client without channel binding"
        ),
        "{}",
        chain(&e)
    );
    // channel_binding=disable uses plain SCRAM over TLS.
    let conn = connect_ok(&repl(
        &c,
        SCRAM_USER,
        &format!("password={PASSWORD} sslmode=require channel_binding=disable"),
    ))
    .await;
    assert_eq!(conn.auth_method(), AuthMethod::ScramSha256);
}
