//! The startup and authentication state machine.
//!
//! After the caller has sent the startup packet, [`Startup`] consumes backend messages and
//! says what to do next ([`Step`]): send bytes, read on, ask for the password, or done with
//! the server's parameters and cancellation key. States are structs named for what they
//! wait for, so a message that does not belong has nowhere to go but a typed error.
//!
//! The password is asked for only when the server wants one ([`Step::NeedPassword`]), so a
//! caller reads `.pgpass` lazily, like libpq. Channel binding follows libpq's
//! `channel_binding` rules: with `require`, every authentication request other than SASL is
//! refused before anything is sent, and `AuthenticationOk` is refused unless a
//! SCRAM-SHA-256-PLUS exchange completed.

use std::collections::BTreeMap;
use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::auth::md5_response;
use crate::auth::scram::{
    self, ExpectServerFinal, ExpectServerFirst, SCRAM_NONCE_LEN, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
    ScramBinding, ScramError, ScramSha256,
};
use crate::backend::{Authentication, BackendMessage};
use crate::error::ProtoError;
use crate::frontend;
use crate::server_error::{Notice, ServerError};

/// libpq's `channel_binding` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChannelBindingPolicy {
    /// Never bind; use plain SCRAM-SHA-256 even when `-PLUS` is offered.
    Disable,
    /// Bind when TLS is in use and the server offers SCRAM-SHA-256-PLUS.
    #[default]
    Prefer,
    /// Fail unless the server authenticates us with SCRAM-SHA-256-PLUS.
    Require,
}

/// What the state machine needs to know about the connection.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    user: String,
    channel_binding: ChannelBindingPolicy,
    tls: bool,
    tls_server_end_point: Option<Vec<u8>>,
    scram_nonce: [u8; SCRAM_NONCE_LEN],
}

impl AuthSettings {
    /// Settings for role `user` (needed for MD5) over a plain connection, channel binding
    /// `prefer`. `scram_nonce` must be fresh random bytes; it is used only if the server
    /// asks for SCRAM.
    pub fn new(user: &str, scram_nonce: [u8; SCRAM_NONCE_LEN]) -> Self {
        Self {
            user: user.to_owned(),
            channel_binding: ChannelBindingPolicy::Prefer,
            tls: false,
            tls_server_end_point: None,
            scram_nonce,
        }
    }

    /// Sets the channel binding policy.
    #[must_use]
    pub fn channel_binding(mut self, policy: ChannelBindingPolicy) -> Self {
        self.channel_binding = policy;
        self
    }

    /// Marks the connection as TLS, with the `tls-server-end-point` hash of the server
    /// certificate when it could be computed.
    #[must_use]
    pub fn tls(mut self, server_end_point: Option<Vec<u8>>) -> Self {
        self.tls = true;
        self.tls_server_end_point = server_end_point;
        self
    }
}

/// How the server authenticated us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// No exchange: the server accepted at once (`trust`, `peer`, or a client certificate
    /// checked during the TLS handshake).
    None,
    /// Cleartext password (`password`).
    Cleartext,
    /// MD5 hash (`md5`).
    Md5,
    /// SCRAM-SHA-256 without channel binding.
    ScramSha256,
    /// SCRAM-SHA-256-PLUS bound to the TLS channel.
    ScramSha256Plus,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethod::None => "none",
            AuthMethod::Cleartext => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::ScramSha256Plus => "scram-sha-256-plus",
        })
    }
}

/// Cancellation key data from `BackendKeyData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendKey {
    /// Backend process id.
    pub process_id: i32,
    /// Secret key.
    pub secret_key: Bytes,
}

/// The server's answer to a protocol version or option it did not support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolNegotiation {
    /// Newest minor version of protocol 3 the server speaks.
    pub newest_minor: i32,
    /// `_pq_.` options it did not recognize.
    pub unrecognized: Vec<String>,
}

/// The result of a successful startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupOutcome {
    /// Every `ParameterStatus` received, by name.
    pub parameters: BTreeMap<String, String>,
    /// Cancellation key, if the server sent one.
    pub backend_key: Option<BackendKey>,
    /// How we were authenticated.
    pub auth_method: AuthMethod,
    /// Notices received during startup.
    pub notices: Vec<Notice>,
    /// Present when the server sent `NegotiateProtocolVersion`.
    pub negotiation: Option<ProtocolNegotiation>,
}

/// What kind of password answer the server asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRequest {
    /// Cleartext.
    Cleartext,
    /// MD5 hash.
    Md5,
    /// SCRAM-SHA-256, with or without channel binding.
    Scram {
        /// Whether SCRAM-SHA-256-PLUS was selected.
        plus: bool,
    },
}

/// What the caller should do next.
#[derive(Debug)]
pub enum Step {
    /// Write these bytes to the server, then feed the next message.
    Send(BytesMut),
    /// Feed the next message.
    Read,
    /// The server wants a password: call [`Startup::provide_password`].
    NeedPassword(PasswordRequest),
    /// The server is ready for queries.
    Done(StartupOutcome),
}

/// Startup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The server reported an error (wrong password, no `pg_hba.conf` entry, no such role,
    /// too many connections…).
    #[error("{0}")]
    Server(Box<ServerError>),
    /// `channel_binding=require` and the server asked for something other than SASL.
    #[error("channel binding required but not supported by server's authentication request")]
    ChannelBindingNotSupportedByRequest,
    /// `channel_binding=require` and the server let us in without a bound SCRAM exchange.
    #[error("channel binding required, but server authenticated client without channel binding")]
    ChannelBindingNotUsed,
    /// `channel_binding=require` on a connection without TLS.
    #[error("channel binding required, but SSL not in use")]
    ChannelBindingWithoutTls,
    /// `channel_binding=require` and the server did not offer SCRAM-SHA-256-PLUS.
    #[error(
        "channel binding is required, but server did not offer an authentication method that supports channel binding"
    )]
    ChannelBindingNotOffered,
    /// `channel_binding=require` but the server certificate's hash could not be computed.
    #[error("channel binding is required, but the server certificate's hash could not be computed")]
    ChannelBindingDataUnavailable,
    /// The server offered SCRAM-SHA-256-PLUS without TLS (TLS stripped by a proxy?).
    #[error("server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection")]
    PlusWithoutTls,
    /// No offered SASL mechanism is one we implement.
    #[error("none of the server's SASL authentication mechanisms are supported (offered: {})", offered.join(", "))]
    NoSupportedMechanism {
        /// The server's list.
        offered: Vec<String>,
    },
    /// The server wants a password and none was supplied.
    #[error("no password supplied")]
    NoPassword,
    /// The server asked for a method we do not implement.
    #[error("authentication method {name} (code {code}) not supported")]
    UnsupportedMethod {
        /// The request code.
        code: i32,
        /// Its name.
        name: &'static str,
    },
    /// The server sent `AuthenticationOk` before finishing the SCRAM exchange, i.e.
    /// without proving it knows the password.
    #[error("server did not complete authentication")]
    Incomplete,
    /// SCRAM failed on our side (malformed message, nonce mismatch, bad server signature).
    #[error(transparent)]
    Scram(#[from] ScramError),
    /// A message arrived that the current state does not expect.
    #[error("unexpected {message} while {state}")]
    Unexpected {
        /// What we were waiting for.
        state: &'static str,
        /// What came.
        message: &'static str,
    },
    /// An outgoing message could not be encoded (e.g. a NUL byte in the password).
    #[error(transparent)]
    Encode(#[from] ProtoError),
}

impl StartupError {
    /// Whether authentication was refused: the server's `28P01`/`28000`, or no password
    /// available although the server wanted one.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            StartupError::Server(e) => e.is_auth_failure(),
            StartupError::NoPassword => true,
            _ => false,
        }
    }

    /// The server's error, if that is what this is.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            StartupError::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// Waiting for the first authentication request (or `NegotiateProtocolVersion`).
#[derive(Debug)]
pub struct ExpectAuthRequest(());

/// The server asked for a password; waiting for the caller to supply it.
#[derive(Debug)]
pub struct NeedPassword {
    request: PasswordRequest,
    md5_salt: [u8; 4],
    binding: ScramBinding,
}

impl NeedPassword {
    /// What the server asked for.
    pub fn request(&self) -> PasswordRequest {
        self.request
    }
}

/// Sent the SCRAM client-first-message; waiting for `AuthenticationSASLContinue`.
#[derive(Debug)]
pub struct ExpectSaslContinue(ExpectServerFirst);

/// Sent the SCRAM client-final-message; waiting for `AuthenticationSASLFinal`.
#[derive(Debug)]
pub struct ExpectSaslFinal(ExpectServerFinal);

/// Sent our answer (or verified the server's SCRAM signature); waiting for
/// `AuthenticationOk`.
#[derive(Debug)]
pub struct ExpectAuthOk {
    method: AuthMethod,
}

/// Authenticated; collecting `ParameterStatus` and `BackendKeyData` until `ReadyForQuery`.
#[derive(Debug)]
pub struct ExpectReady {
    method: AuthMethod,
    parameters: BTreeMap<String, String>,
    backend_key: Option<BackendKey>,
}

/// Where the startup conversation is.
#[derive(Debug)]
pub enum StartupState {
    /// See [`ExpectAuthRequest`].
    ExpectAuthRequest(ExpectAuthRequest),
    /// See [`NeedPassword`].
    NeedPassword(NeedPassword),
    /// See [`ExpectSaslContinue`].
    ExpectSaslContinue(ExpectSaslContinue),
    /// See [`ExpectSaslFinal`].
    ExpectSaslFinal(ExpectSaslFinal),
    /// See [`ExpectAuthOk`].
    ExpectAuthOk(ExpectAuthOk),
    /// See [`ExpectReady`].
    ExpectReady(ExpectReady),
    /// `ReadyForQuery` arrived; the outcome was handed out.
    Finished,
    /// An error was returned; nothing more can happen.
    Failed,
}

impl StartupState {
    fn describe(&self) -> &'static str {
        match self {
            StartupState::ExpectAuthRequest(_) => "waiting for an authentication request",
            StartupState::NeedPassword(_) => "waiting for the password",
            StartupState::ExpectSaslContinue(_) => "waiting for AuthenticationSASLContinue",
            StartupState::ExpectSaslFinal(_) => "waiting for AuthenticationSASLFinal",
            StartupState::ExpectAuthOk(_) => "waiting for AuthenticationOk",
            StartupState::ExpectReady(_) => "waiting for ReadyForQuery",
            StartupState::Finished => "startup is finished",
            StartupState::Failed => "startup has failed",
        }
    }
}

/// The startup/authentication conversation of one connection attempt.
///
/// ```
/// use bytes::BytesMut;
/// use pgwalrus_proto::startup::{AuthMethod, AuthSettings, Startup, Step};
/// use pgwalrus_proto::{Authentication, BackendMessage, TransactionStatus};
///
/// let mut startup = Startup::new(AuthSettings::new("walrus", [7; 18]));
/// let step = startup.handle(BackendMessage::Authentication(Authentication::CleartextPassword)).unwrap();
/// assert!(matches!(step, Step::NeedPassword(_)));
/// let Step::Send(bytes) = startup.provide_password(Some("pencil")).unwrap() else { panic!() };
/// assert_eq!(&bytes[..], b"p\x00\x00\x00\x0bpencil\x00");
/// startup.handle(BackendMessage::Authentication(Authentication::Ok)).unwrap();
/// let Step::Done(outcome) = startup.handle(BackendMessage::ReadyForQuery(TransactionStatus::Idle)).unwrap() else {
///     panic!()
/// };
/// assert_eq!(outcome.auth_method, AuthMethod::Cleartext);
/// ```
#[derive(Debug)]
pub struct Startup {
    settings: AuthSettings,
    state: StartupState,
    notices: Vec<Notice>,
    negotiation: Option<ProtocolNegotiation>,
}

impl Startup {
    /// A conversation that has sent its startup packet and waits for the server.
    pub fn new(settings: AuthSettings) -> Self {
        Self {
            settings,
            state: StartupState::ExpectAuthRequest(ExpectAuthRequest(())),
            notices: Vec::new(),
            negotiation: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> &StartupState {
        &self.state
    }

    /// Feeds one backend message.
    ///
    /// # Errors
    /// [`StartupError`]: the server's error, a channel-binding violation, an unsupported
    /// method, a SCRAM failure or an unexpected message. The conversation is over then.
    pub fn handle(&mut self, msg: BackendMessage) -> Result<Step, StartupError> {
        let state = std::mem::replace(&mut self.state, StartupState::Failed);
        let msg = match msg {
            BackendMessage::ErrorResponse(e) => return Err(StartupError::Server(Box::new(e))),
            BackendMessage::NoticeResponse(n) => {
                self.notices.push(n);
                self.state = state;
                return Ok(Step::Read);
            }
            msg => msg,
        };
        if let BackendMessage::Authentication(auth) = &msg {
            self.check_channel_binding(auth, &state)?;
        }
        match (state, msg) {
            (
                StartupState::ExpectAuthRequest(s),
                BackendMessage::NegotiateProtocolVersion {
                    newest_minor,
                    unrecognized,
                },
            ) => {
                self.negotiation = Some(ProtocolNegotiation {
                    newest_minor,
                    unrecognized,
                });
                self.state = StartupState::ExpectAuthRequest(s);
                Ok(Step::Read)
            }
            (StartupState::ExpectAuthRequest(_), BackendMessage::Authentication(auth)) => {
                self.auth_request(auth)
            }
            (
                StartupState::ExpectSaslContinue(s),
                BackendMessage::Authentication(Authentication::SaslContinue(data)),
            ) => {
                let (client_final, next) = s.0.server_first(&data)?;
                let mut buf = BytesMut::new();
                frontend::sasl_response(&client_final, &mut buf)?;
                self.state = StartupState::ExpectSaslFinal(ExpectSaslFinal(next));
                Ok(Step::Send(buf))
            }
            (
                StartupState::ExpectSaslFinal(s),
                BackendMessage::Authentication(Authentication::SaslFinal(data)),
            ) => {
                let method = if s.0.is_channel_bound() {
                    AuthMethod::ScramSha256Plus
                } else {
                    AuthMethod::ScramSha256
                };
                s.0.server_final(&data)?;
                self.state = StartupState::ExpectAuthOk(ExpectAuthOk { method });
                Ok(Step::Read)
            }
            (
                StartupState::ExpectSaslContinue(_) | StartupState::ExpectSaslFinal(_),
                BackendMessage::Authentication(Authentication::Ok),
            ) => Err(StartupError::Incomplete),
            (StartupState::ExpectAuthOk(s), BackendMessage::Authentication(Authentication::Ok)) => {
                self.state = StartupState::ExpectReady(ExpectReady {
                    method: s.method,
                    parameters: BTreeMap::new(),
                    backend_key: None,
                });
                Ok(Step::Read)
            }
            (StartupState::ExpectReady(mut s), BackendMessage::ParameterStatus { name, value }) => {
                s.parameters.insert(name, value);
                self.state = StartupState::ExpectReady(s);
                Ok(Step::Read)
            }
            (
                StartupState::ExpectReady(mut s),
                BackendMessage::BackendKeyData {
                    process_id,
                    secret_key,
                },
            ) => {
                s.backend_key = Some(BackendKey {
                    process_id,
                    secret_key,
                });
                self.state = StartupState::ExpectReady(s);
                Ok(Step::Read)
            }
            (StartupState::ExpectReady(s), BackendMessage::ReadyForQuery(_)) => {
                self.state = StartupState::Finished;
                Ok(Step::Done(StartupOutcome {
                    parameters: s.parameters,
                    backend_key: s.backend_key,
                    auth_method: s.method,
                    notices: std::mem::take(&mut self.notices),
                    negotiation: self.negotiation.take(),
                }))
            }
            (state, msg) => Err(StartupError::Unexpected {
                state: state.describe(),
                message: msg.name(),
            }),
        }
    }

    /// Supplies the password the server asked for (`None` when there is none).
    ///
    /// # Errors
    /// [`StartupError::NoPassword`] for `None` or an empty password (as libpq),
    /// [`StartupError::Unexpected`] when no password was asked for, or an encoding error.
    pub fn provide_password(&mut self, password: Option<&str>) -> Result<Step, StartupError> {
        let state = std::mem::replace(&mut self.state, StartupState::Failed);
        let StartupState::NeedPassword(need) = state else {
            return Err(StartupError::Unexpected {
                state: state.describe(),
                message: "password",
            });
        };
        let password = match password {
            Some(p) if !p.is_empty() => p,
            _ => return Err(StartupError::NoPassword),
        };
        let mut buf = BytesMut::new();
        match need.request {
            PasswordRequest::Cleartext => {
                frontend::password(password.as_bytes(), &mut buf)?;
                self.state = StartupState::ExpectAuthOk(ExpectAuthOk {
                    method: AuthMethod::Cleartext,
                });
            }
            PasswordRequest::Md5 => {
                let response =
                    md5_response(&self.settings.user, password.as_bytes(), need.md5_salt);
                frontend::password(response.as_bytes(), &mut buf)?;
                self.state = StartupState::ExpectAuthOk(ExpectAuthOk {
                    method: AuthMethod::Md5,
                });
            }
            PasswordRequest::Scram { plus } => {
                let nonce = scram::nonce_from_random(&self.settings.scram_nonce);
                let (first, next) = ScramSha256::start(password, need.binding, &nonce)?;
                let mechanism = if plus {
                    SCRAM_SHA_256_PLUS
                } else {
                    SCRAM_SHA_256
                };
                frontend::sasl_initial_response(mechanism, &first, &mut buf)?;
                self.state = StartupState::ExpectSaslContinue(ExpectSaslContinue(next));
            }
        }
        Ok(Step::Send(buf))
    }

    /// libpq's check on every authentication request when `channel_binding=require`.
    fn check_channel_binding(
        &self,
        auth: &Authentication,
        state: &StartupState,
    ) -> Result<(), StartupError> {
        if self.settings.channel_binding != ChannelBindingPolicy::Require {
            return Ok(());
        }
        match auth {
            Authentication::Sasl { .. }
            | Authentication::SaslContinue(_)
            | Authentication::SaslFinal(_) => Ok(()),
            Authentication::Ok => match state {
                StartupState::ExpectAuthOk(ExpectAuthOk {
                    method: AuthMethod::ScramSha256Plus,
                }) => Ok(()),
                _ => Err(StartupError::ChannelBindingNotUsed),
            },
            _ => Err(StartupError::ChannelBindingNotSupportedByRequest),
        }
    }

    fn auth_request(&mut self, auth: Authentication) -> Result<Step, StartupError> {
        let need = |request, md5_salt, binding| {
            StartupState::NeedPassword(NeedPassword {
                request,
                md5_salt,
                binding,
            })
        };
        match auth {
            Authentication::Ok => {
                self.state = StartupState::ExpectReady(ExpectReady {
                    method: AuthMethod::None,
                    parameters: BTreeMap::new(),
                    backend_key: None,
                });
                Ok(Step::Read)
            }
            Authentication::CleartextPassword => {
                self.state = need(
                    PasswordRequest::Cleartext,
                    [0; 4],
                    ScramBinding::Unsupported,
                );
                Ok(Step::NeedPassword(PasswordRequest::Cleartext))
            }
            Authentication::Md5Password { salt } => {
                self.state = need(PasswordRequest::Md5, salt, ScramBinding::Unsupported);
                Ok(Step::NeedPassword(PasswordRequest::Md5))
            }
            Authentication::Sasl { mechanisms } => {
                let (plus, binding) = self.select_mechanism(&mechanisms)?;
                let request = PasswordRequest::Scram { plus };
                self.state = need(request, [0; 4], binding);
                Ok(Step::NeedPassword(request))
            }
            Authentication::Unsupported { code } => Err(StartupError::UnsupportedMethod {
                code,
                name: method_name(code),
            }),
            other @ (Authentication::SaslContinue(_) | Authentication::SaslFinal(_)) => {
                Err(StartupError::Unexpected {
                    state: "waiting for an authentication request",
                    message: BackendMessage::Authentication(other).name(),
                })
            }
        }
    }

    /// Picks SCRAM-SHA-256-PLUS or SCRAM-SHA-256 as libpq does, and the GS2 binding flag.
    fn select_mechanism(&self, offered: &[String]) -> Result<(bool, ScramBinding), StartupError> {
        let s = &self.settings;
        let require = s.channel_binding == ChannelBindingPolicy::Require;
        if require && !s.tls {
            return Err(StartupError::ChannelBindingWithoutTls);
        }
        let mut plus = false;
        let mut plain = false;
        for m in offered {
            if m == SCRAM_SHA_256_PLUS {
                if !s.tls {
                    return Err(StartupError::PlusWithoutTls);
                }
                if s.channel_binding != ChannelBindingPolicy::Disable {
                    plus = true;
                }
            } else if m == SCRAM_SHA_256 {
                plain = true;
            }
        }
        if !plus && !plain {
            return Err(StartupError::NoSupportedMechanism {
                offered: offered.to_vec(),
            });
        }
        if plus {
            match &s.tls_server_end_point {
                Some(hash) => return Ok((true, ScramBinding::TlsServerEndPoint(hash.clone()))),
                // The certificate's hash algorithm has no defined end-point hash: we cannot
                // bind, so we behave as a client without channel-binding support ("n"),
                // which the server accepts; `require` cannot be met.
                None if require => return Err(StartupError::ChannelBindingDataUnavailable),
                None if plain => return Ok((false, ScramBinding::Unsupported)),
                None => {
                    return Err(StartupError::NoSupportedMechanism {
                        offered: offered.to_vec(),
                    });
                }
            }
        }
        if require {
            return Err(StartupError::ChannelBindingNotOffered);
        }
        let binding = if s.tls && s.channel_binding != ChannelBindingPolicy::Disable {
            ScramBinding::NotOfferedByServer
        } else {
            ScramBinding::Unsupported
        };
        Ok((false, binding))
    }
}

fn method_name(code: i32) -> &'static str {
    match code {
        1 => "Kerberos 4",
        2 => "Kerberos 5",
        4 => "crypt",
        6 => "SCM credentials",
        7 | 8 => "GSSAPI",
        9 => "SSPI",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests;
