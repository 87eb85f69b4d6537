use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::backend::TransactionStatus;
use crate::testdata::{self, Dir};

fn parse_one(frame: &[u8]) -> BackendMessage {
    let mut buf = BytesMut::from(frame);
    let m = BackendMessage::parse(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    m
}

/// Replays a captured login: feeds the server's frames, supplies `password` when asked,
/// and checks every byte we send equals what libpq sent.
fn replay(
    capture: &str,
    settings: AuthSettings,
    password: &str,
) -> Result<StartupOutcome, StartupError> {
    let frames = testdata::frames(capture);
    // Frame 0 is the startup packet; we start after it.
    let mut startup = Startup::new(settings);
    let mut expected_client = frames
        .iter()
        .skip(1)
        .filter(|(d, _)| *d == Dir::Client)
        .map(|(_, f)| f.clone());
    for (dir, frame) in frames.iter().skip(1) {
        if *dir != Dir::Server {
            continue;
        }
        let mut step = startup.handle(parse_one(frame))?;
        loop {
            match step {
                Step::NeedPassword(_) => step = startup.provide_password(Some(password))?,
                Step::Send(bytes) => {
                    assert_eq!(
                        &bytes[..],
                        &expected_client.next().unwrap()[..],
                        "client bytes differ from libpq's"
                    );
                    break;
                }
                Step::Read => break,
                Step::Done(outcome) => return Ok(outcome),
            }
        }
    }
    panic!("capture ended before ReadyForQuery");
}

fn captured_nonce(capture: &str) -> [u8; 18] {
    // The client-first-message inside libpq's SASLInitialResponse: "n,,n=,r=<nonce>".
    let frames = testdata::frames(capture);
    let first = &frames
        .iter()
        .find(|(d, f)| *d == Dir::Client && f[0] == b'p')
        .unwrap()
        .1;
    let text = std::str::from_utf8(&first[first.len() - 24..]).unwrap();
    BASE64.decode(text).unwrap().try_into().unwrap()
}

#[test]
fn replays_captured_scram_login_byte_for_byte() {
    let nonce = captured_nonce(testdata::SCRAM_REPLICATION_COMMANDS);
    let outcome = replay(
        testdata::SCRAM_REPLICATION_COMMANDS,
        AuthSettings::new("walrus", nonce),
        "pencil",
    )
    .unwrap();
    assert_eq!(outcome.auth_method, AuthMethod::ScramSha256);
    assert_eq!(
        outcome.parameters["server_version"],
        "15.18 (Debian 15.18-0+deb12u1)"
    );
    assert_eq!(outcome.parameters["in_hot_standby"], "off");
    assert_eq!(outcome.backend_key.unwrap().process_id, 0x26b6);
}

#[test]
fn replays_captured_md5_login_byte_for_byte() {
    let mut frames = testdata::MD5.to_owned();
    // The md5 capture stops at AuthenticationOk; add the end of startup.
    frames.push_str("S 5a0000000549\n");
    let outcome = replay(&frames, AuthSettings::new("md5user", [0; 18]), "pencil").unwrap();
    assert_eq!(outcome.auth_method, AuthMethod::Md5);
}

#[test]
fn captured_wrong_password_is_an_auth_failure() {
    let nonce = captured_nonce(testdata::SCRAM_WRONG_PASSWORD);
    let err = replay(
        testdata::SCRAM_WRONG_PASSWORD,
        AuthSettings::new("walrus", nonce),
        "wrong",
    )
    .unwrap_err();
    assert!(err.is_auth_failure());
    assert_eq!(
        err.to_string(),
        "FATAL:  password authentication failed for user \"walrus\""
    );
    assert_eq!(err.server_error().unwrap().code().code(), "28P01");
}

#[test]
fn tampered_server_signature_is_rejected() {
    let nonce = captured_nonce(testdata::SCRAM_REPLICATION_COMMANDS);
    let mut startup = Startup::new(AuthSettings::new("walrus", nonce));
    let frames = testdata::frames(testdata::SCRAM_REPLICATION_COMMANDS);
    let server: Vec<_> = frames
        .iter()
        .filter(|(d, _)| *d == Dir::Server)
        .map(|(_, f)| parse_one(f))
        .collect();
    assert!(matches!(
        startup.handle(server[0].clone()).unwrap(),
        Step::NeedPassword(PasswordRequest::Scram { plus: false })
    ));
    startup.provide_password(Some("pencil")).unwrap();
    startup.handle(server[1].clone()).unwrap();
    let forged = BackendMessage::Authentication(Authentication::SaslFinal(Bytes::from_static(
        b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )));
    assert_eq!(
        startup.handle(forged).unwrap_err(),
        StartupError::Scram(ScramError::ServerSignatureMismatch)
    );
}

#[test]
fn auth_ok_in_the_middle_of_scram_is_refused() {
    let mut startup = Startup::new(AuthSettings::new("u", [1; 18]));
    startup.handle(sasl(&["SCRAM-SHA-256"])).unwrap();
    startup.provide_password(Some("p")).unwrap();
    assert_eq!(startup.handle(ok()).unwrap_err(), StartupError::Incomplete);
}

fn ok() -> BackendMessage {
    BackendMessage::Authentication(Authentication::Ok)
}

fn sasl(mechs: &[&str]) -> BackendMessage {
    BackendMessage::Authentication(Authentication::Sasl {
        mechanisms: mechs.iter().map(|m| (*m).to_owned()).collect(),
    })
}

fn ready() -> BackendMessage {
    BackendMessage::ReadyForQuery(TransactionStatus::Idle)
}

#[test]
fn trust_never_asks_for_a_password() {
    let mut startup = Startup::new(AuthSettings::new("u", [0; 18]));
    assert!(matches!(startup.handle(ok()).unwrap(), Step::Read));
    startup
        .handle(BackendMessage::ParameterStatus {
            name: "server_version".into(),
            value: "17.2".into(),
        })
        .unwrap();
    startup
        .handle(BackendMessage::BackendKeyData {
            process_id: 7,
            secret_key: Bytes::from_static(&[1, 2, 3, 4]),
        })
        .unwrap();
    let notice = crate::server_error::ServerError::parse(b"SNOTICE\0Mhello\0\0").unwrap();
    startup
        .handle(BackendMessage::NoticeResponse(notice))
        .unwrap();
    let Step::Done(o) = startup.handle(ready()).unwrap() else {
        panic!()
    };
    assert_eq!(o.auth_method, AuthMethod::None);
    assert_eq!(o.parameters["server_version"], "17.2");
    assert_eq!(o.backend_key.unwrap().process_id, 7);
    assert_eq!(o.notices.len(), 1);
    assert!(matches!(startup.state(), StartupState::Finished));
}

#[test]
fn empty_or_missing_password_is_no_password() {
    for pw in [None, Some("")] {
        let mut startup = Startup::new(AuthSettings::new("u", [0; 18]));
        startup
            .handle(BackendMessage::Authentication(
                Authentication::Md5Password { salt: [1, 2, 3, 4] },
            ))
            .unwrap();
        let err = startup.provide_password(pw).unwrap_err();
        assert_eq!(err, StartupError::NoPassword);
        assert!(err.is_auth_failure());
    }
}

#[test]
fn unsupported_and_unexpected() {
    let mut startup = Startup::new(AuthSettings::new("u", [0; 18]));
    assert_eq!(
        startup
            .handle(BackendMessage::Authentication(
                Authentication::Unsupported { code: 7 }
            ))
            .unwrap_err(),
        StartupError::UnsupportedMethod {
            code: 7,
            name: "GSSAPI"
        }
    );
    let mut startup = Startup::new(AuthSettings::new("u", [0; 18]));
    assert_eq!(
        startup.handle(ready()).unwrap_err(),
        StartupError::Unexpected {
            state: "waiting for an authentication request",
            message: "ReadyForQuery"
        }
    );
    let mut startup = Startup::new(AuthSettings::new("u", [0; 18]));
    assert!(matches!(
        startup.provide_password(Some("x")),
        Err(StartupError::Unexpected { .. })
    ));
    let mut startup = Startup::new(AuthSettings::new("u", [0; 18]));
    assert_eq!(
        startup
            .handle(sasl(&["OAUTHBEARER"]))
            .unwrap_err()
            .to_string(),
        "none of the server's SASL authentication mechanisms are supported (offered: OAUTHBEARER)"
    );
}

#[test]
fn negotiate_protocol_version_is_recorded() {
    let mut startup = Startup::new(AuthSettings::new("u", [0; 18]));
    startup
        .handle(BackendMessage::NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: vec!["_pq_.x".into()],
        })
        .unwrap();
    startup.handle(ok()).unwrap();
    let Step::Done(o) = startup.handle(ready()).unwrap() else {
        panic!()
    };
    assert_eq!(
        o.negotiation.unwrap().unrecognized,
        vec!["_pq_.x".to_owned()]
    );
}

fn settings(policy: ChannelBindingPolicy, tls: bool) -> AuthSettings {
    let s = AuthSettings::new("u", [9; 18]).channel_binding(policy);
    if tls { s.tls(Some(vec![0xab; 32])) } else { s }
}

/// The first bytes of the SASLInitialResponse: mechanism and GS2 header.
fn first_message(
    policy: ChannelBindingPolicy,
    tls: bool,
    offered: &[&str],
) -> Result<(String, String), StartupError> {
    let mut startup = Startup::new(settings(policy, tls));
    startup.handle(sasl(offered))?;
    let Step::Send(buf) = startup.provide_password(Some("p"))? else {
        panic!()
    };
    let body = &buf[5..];
    let nul = body.iter().position(|&b| b == 0).unwrap();
    let mech = String::from_utf8(body[..nul].to_vec()).unwrap();
    let data = String::from_utf8(body[nul + 5..].to_vec()).unwrap();
    let header = data.split("n=,").next().unwrap().to_owned();
    Ok((mech, header))
}

#[test]
fn channel_binding_selection_matches_libpq() {
    use ChannelBindingPolicy::*;
    let both = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];
    let plain = ["SCRAM-SHA-256"];
    let ok = |m: &str, h: &str| Ok((m.to_owned(), h.to_owned()));
    // prefer: bind when TLS and offered; "y" when TLS but not offered; "n" without TLS.
    assert_eq!(
        first_message(Prefer, true, &both),
        ok("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,")
    );
    assert_eq!(
        first_message(Prefer, true, &plain),
        ok("SCRAM-SHA-256", "y,,")
    );
    assert_eq!(
        first_message(Prefer, false, &plain),
        ok("SCRAM-SHA-256", "n,,")
    );
    // disable: never bind, "n" even over TLS.
    assert_eq!(
        first_message(Disable, true, &both),
        ok("SCRAM-SHA-256", "n,,")
    );
    // require.
    assert_eq!(
        first_message(Require, true, &both),
        ok("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,")
    );
    assert_eq!(
        first_message(Require, true, &plain),
        Err(StartupError::ChannelBindingNotOffered)
    );
    assert_eq!(
        first_message(Require, false, &plain),
        Err(StartupError::ChannelBindingWithoutTls)
    );
    // PLUS over a plain connection is a stripped-TLS smell.
    assert_eq!(
        first_message(Prefer, false, &both),
        Err(StartupError::PlusWithoutTls)
    );
}

#[test]
fn channel_binding_without_certificate_hash() {
    let s = AuthSettings::new("u", [9; 18]).tls(None);
    let mut startup = Startup::new(s.clone());
    startup
        .handle(sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))
        .unwrap();
    assert!(
        matches!(startup.state(), StartupState::NeedPassword(n) if n.request() == PasswordRequest::Scram { plus: false })
    );
    let mut startup = Startup::new(s.channel_binding(ChannelBindingPolicy::Require));
    assert_eq!(
        startup.handle(sasl(&["SCRAM-SHA-256-PLUS"])).unwrap_err(),
        StartupError::ChannelBindingDataUnavailable
    );
}

#[test]
fn require_refuses_non_sasl_requests_before_sending_anything() {
    for req in [
        Authentication::CleartextPassword,
        Authentication::Md5Password { salt: [0; 4] },
        Authentication::Unsupported { code: 7 },
    ] {
        let mut startup = Startup::new(settings(ChannelBindingPolicy::Require, true));
        assert_eq!(
            startup
                .handle(BackendMessage::Authentication(req))
                .unwrap_err()
                .to_string(),
            "channel binding required but not supported by server's authentication request"
        );
    }
    // Trust (or cert) auth: AuthenticationOk without any exchange.
    let mut startup = Startup::new(settings(ChannelBindingPolicy::Require, true));
    assert_eq!(
        startup.handle(ok()).unwrap_err().to_string(),
        "channel binding required, but server authenticated client without channel binding"
    );
}

/// A complete SCRAM-SHA-256-PLUS exchange against a reference server computation.
#[test]
fn plus_exchange_completes_and_reports_method() {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let hash = vec![0x5a; 32];
    let mut startup = Startup::new(
        AuthSettings::new("u", [3; 18])
            .channel_binding(ChannelBindingPolicy::Require)
            .tls(Some(hash.clone())),
    );
    startup
        .handle(sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))
        .unwrap();
    let Step::Send(first) = startup.provide_password(Some("secret")).unwrap() else {
        panic!()
    };
    let first = String::from_utf8(first[first.len() - 32..].to_vec()).unwrap();
    let client_nonce = first.rsplit("r=").next().unwrap().to_owned();
    let salt = b"saltsalt";
    let server_first = format!("r={client_nonce}SERVER,s={},i=4096", BASE64.encode(salt));
    let Step::Send(fin) = startup
        .handle(BackendMessage::Authentication(
            Authentication::SaslContinue(Bytes::from(server_first.clone())),
        ))
        .unwrap()
    else {
        panic!()
    };
    let fin = String::from_utf8(fin[5..].to_vec()).unwrap();
    let mut cb = b"p=tls-server-end-point,,".to_vec();
    cb.extend(&hash);
    assert!(fin.starts_with(&format!("c={},", BASE64.encode(&cb))));
    let without_proof = fin.rsplit_once(",p=").unwrap().0;
    let auth = format!("n=,r={client_nonce},{server_first},{without_proof}");
    let mac = |k: &[u8], d: &[u8]| {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(k).unwrap();
        m.update(d);
        m.finalize().into_bytes().to_vec()
    };
    // PBKDF2 by hand.
    let mut u = mac(b"secret", &[&salt[..], &1u32.to_be_bytes()].concat());
    let mut salted = u.clone();
    for _ in 1..4096 {
        u = mac(b"secret", &u);
        salted.iter_mut().zip(&u).for_each(|(a, b)| *a ^= b);
    }
    let _ = Sha256::digest(&salted);
    let sig = mac(&mac(&salted, b"Server Key"), auth.as_bytes());
    let final_msg = format!("v={}", BASE64.encode(sig));
    assert!(matches!(
        startup
            .handle(BackendMessage::Authentication(Authentication::SaslFinal(
                Bytes::from(final_msg)
            )))
            .unwrap(),
        Step::Read
    ));
    startup.handle(ok()).unwrap();
    let Step::Done(o) = startup.handle(ready()).unwrap() else {
        panic!()
    };
    assert_eq!(o.auth_method, AuthMethod::ScramSha256Plus);
}

fn arb_msg() -> impl Strategy<Value = BackendMessage> {
    prop_oneof![
        Just(ok()),
        Just(BackendMessage::Authentication(
            Authentication::CleartextPassword
        )),
        any::<[u8; 4]>()
            .prop_map(|salt| BackendMessage::Authentication(Authentication::Md5Password { salt })),
        Just(sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])),
        Just(sasl(&["SCRAM-SHA-256"])),
        proptest::collection::vec(any::<u8>(), 0..60)
            .prop_map(|d| BackendMessage::Authentication(Authentication::SaslContinue(d.into()))),
        proptest::collection::vec(any::<u8>(), 0..60)
            .prop_map(|d| BackendMessage::Authentication(Authentication::SaslFinal(d.into()))),
        Just(ready()),
        Just(BackendMessage::CopyDone),
        Just(BackendMessage::ParameterStatus {
            name: "a".into(),
            value: "b".into()
        }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_message_sequences_never_panic(
        msgs in proptest::collection::vec(arb_msg(), 0..8),
        policy in prop_oneof![Just(ChannelBindingPolicy::Disable), Just(ChannelBindingPolicy::Prefer), Just(ChannelBindingPolicy::Require)],
        tls in any::<bool>(),
    ) {
        let mut startup = Startup::new(settings(policy, tls));
        for m in msgs {
            match startup.handle(m) {
                Ok(Step::NeedPassword(_)) => {
                    if startup.provide_password(Some("pw")).is_err() {
                        break;
                    }
                }
                Ok(Step::Done(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
