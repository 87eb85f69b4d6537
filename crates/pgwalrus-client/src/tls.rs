//! TLS for the client: a rustls configuration built from libpq-style settings, and the
//! `tls-server-end-point` channel-binding hash used by SCRAM-SHA-256-PLUS.
//!
//! The verification rules follow libpq: `verify-full` checks chain and host name,
//! `verify-ca` the chain only, `require`/`prefer`/`allow` check nothing — unless a root
//! certificate file is configured, in which case libpq verifies the chain anyway, and so do we.
//! Unix-domain sockets never use TLS (libpq ignores `sslmode` for them).

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::Digest;

use crate::config::{Host, HostSpec, RootCert, SslConfig, SslMode};

/// The ALPN protocol name PostgreSQL 17+ servers require for direct TLS connections.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// `verify-ca`/`verify-full` without any root certificate to verify against.
    #[error(
        "root certificate file \"{path}\" does not exist; provide it with sslrootcert, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification"
    )]
    RootCertMissing {
        /// The default location that was looked for.
        path: PathBuf,
    },
    /// The root certificate file could not be read.
    #[error("could not read root certificate file \"{path}\"")]
    ReadRootCert {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The root certificate file holds no usable certificate.
    #[error("no usable certificate in root certificate file \"{path}\"")]
    NoRootCert {
        /// The file.
        path: PathBuf,
    },
    /// `sslrootcert=system` with a mode weaker than `verify-full` (libpq refuses this too).
    #[error(
        "weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \"verify-full\")"
    )]
    WeakModeWithSystemRoots {
        /// The configured mode.
        mode: &'static str,
    },
    /// The operating system's trust store yielded no certificate.
    #[error("could not load the system's trusted root certificates")]
    SystemRoots,
    /// The client certificate file could not be read or holds no certificate.
    #[error("could not read certificate file \"{path}\"")]
    ReadCert {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A client certificate is configured but its key file is missing.
    #[error("certificate present, but not private key file \"{path}\"")]
    KeyMissing {
        /// Where the key was expected.
        path: PathBuf,
    },
    /// The private key file could not be read or parsed.
    #[error("could not load private key file \"{path}\"")]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The private key file is readable by others (libpq refuses it too).
    #[error(
        "private key file \"{path}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root"
    )]
    KeyPermissions {
        /// The file.
        path: PathBuf,
    },
    /// rustls rejected the configuration (for example a key that does not match the certificate).
    #[error("invalid TLS configuration")]
    Config(#[source] rustls::Error),
    /// The host name cannot be used as a TLS server name.
    #[error("invalid TLS server name \"{name}\"")]
    ServerName {
        /// The host name.
        name: String,
    },
}

/// What a connection attempt needs to start TLS.
#[derive(Clone)]
pub struct TlsParams {
    /// The client configuration (roots, verifier, client certificate, ALPN).
    pub config: Arc<ClientConfig>,
    /// The name the server certificate is checked against (and sent as SNI).
    pub server_name: ServerName<'static>,
}

impl fmt::Debug for TlsParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsParams")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Builds the TLS parameters for one host, or `None` when TLS is not to be used at all
/// (`sslmode=disable`, or a Unix-domain socket).
///
/// `direct` is informational: the ALPN protocol `postgresql` is always offered, as libpq 17
/// does; servers before 17 ignore it, 17+ require it for direct TLS.
///
/// # Errors
/// A missing or unreadable root certificate when verification is required, an unreadable or
/// too widely readable client key, a certificate without a key, or a configuration rustls
/// rejects.
pub fn prepare(
    ssl: &SslConfig,
    host: &HostSpec,
    direct: bool,
) -> Result<Option<TlsParams>, TlsError> {
    let _ = direct;
    let name = match &host.host {
        Host::Unix(_) => return Ok(None),
        Host::Tcp(name) => name.clone(),
    };
    if ssl.mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(ssl, &provider)?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &ssl.cert {
        Some(cert_path) => {
            // Resolution fills in libpq's default key path when that file exists; a certificate
            // with no key at all is libpq's "certificate present, but not private key" error.
            let key_path = ssl.key.clone().unwrap_or_else(default_key_path);
            let (chain, key) = load_client_identity(cert_path, &key_path)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::Config)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    config.enable_sni = ssl.sni;
    let server_name =
        ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName { name })?;
    Ok(Some(TlsParams {
        config: Arc::new(config),
        server_name,
    }))
}

fn verifier(
    ssl: &SslConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let roots = match &ssl.rootcert {
        Some(RootCert::System) => {
            if ssl.mode != SslMode::VerifyFull {
                return Err(TlsError::WeakModeWithSystemRoots {
                    mode: ssl.mode.as_str(),
                });
            }
            Some(system_roots()?)
        }
        Some(RootCert::File(path)) => Some(file_roots(path)?),
        None => {
            if matches!(ssl.mode, SslMode::VerifyCa | SslMode::VerifyFull) {
                return Err(TlsError::RootCertMissing {
                    path: default_root_cert_path(),
                });
            }
            None
        }
    };
    let Some(roots) = roots else {
        return Ok(Arc::new(NoChainCheck {
            provider: provider.clone(),
        }));
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
    if ssl.mode == SslMode::VerifyFull {
        Ok(webpki)
    } else {
        Ok(Arc::new(ChainOnly { inner: webpki }))
    }
}

fn default_root_cert_path() -> PathBuf {
    postgresql_dir().join("root.crt")
}

fn default_key_path() -> PathBuf {
    postgresql_dir().join("postgresql.key")
}

fn postgresql_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".postgresql")
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(TlsError::SystemRoots);
    }
    Ok(store)
}

fn file_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = read_certs(path).map_err(|source| TlsError::ReadRootCert {
        path: path.to_owned(),
        source,
    })?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::NoRootCert {
            path: path.to_owned(),
        });
    }
    Ok(store)
}

fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no PEM certificate in file",
        ));
    }
    Ok(certs)
}

fn load_client_identity(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = read_certs(cert_path).map_err(|source| TlsError::ReadCert {
        path: cert_path.to_owned(),
        source,
    })?;
    let meta = match std::fs::metadata(key_path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TlsError::KeyMissing {
                path: key_path.to_owned(),
            });
        }
        Err(source) => {
            return Err(TlsError::ReadKey {
                path: key_path.to_owned(),
                source,
            });
        }
    };
    // libpq allows 0640 for root-owned keys (shared via a group such as ssl-cert), 0600 otherwise.
    let allowed_extra = if meta.uid() == 0 { 0o040 } else { 0 };
    if meta.mode() & 0o077 & !allowed_extra != 0 {
        return Err(TlsError::KeyPermissions {
            path: key_path.to_owned(),
        });
    }
    let pem = std::fs::read(key_path).map_err(|source| TlsError::ReadKey {
        path: key_path.to_owned(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::ReadKey {
        path: key_path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })?;
    Ok((chain, key))
}

/// `require`/`prefer`/`allow` without a root certificate: encryption without authentication,
/// exactly what libpq gives. Handshake signatures are still checked so the session keys are
/// bound to the presented certificate (which channel binding relies on).
#[derive(Debug)]
struct NoChainCheck {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoChainCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means the chain was good.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The `tls-server-end-point` channel-binding data (RFC 5929) for the server's end-entity
/// certificate: the certificate hashed with the hash of its signature algorithm, SHA-256 when
/// that is MD5 or SHA-1. `None` when the algorithm has no single hash (e.g. Ed25519, RSA-PSS) or
/// the certificate cannot be parsed; the caller then treats channel binding as unavailable.
pub fn channel_binding_hash(end_entity_cert_der: &[u8]) -> Option<Vec<u8>> {
    let oid = signature_algorithm_oid(end_entity_cert_der)?;
    let hash = match oid {
        // md5WithRSA, sha1WithRSA, sha256WithRSA, ecdsa-with-SHA1, ecdsa-with-SHA256
        OID_MD5_RSA | OID_SHA1_RSA | OID_SHA256_RSA | OID_ECDSA_SHA1 | OID_ECDSA_SHA256 => {
            sha2::Sha256::digest(end_entity_cert_der).to_vec()
        }
        OID_SHA224_RSA | OID_ECDSA_SHA224 => sha2::Sha224::digest(end_entity_cert_der).to_vec(),
        OID_SHA384_RSA | OID_ECDSA_SHA384 => sha2::Sha384::digest(end_entity_cert_der).to_vec(),
        OID_SHA512_RSA | OID_ECDSA_SHA512 => sha2::Sha512::digest(end_entity_cert_der).to_vec(),
        _ => return None,
    };
    Some(hash)
}

// DER-encoded OID contents (without tag and length).
const OID_MD5_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
const OID_SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_SHA224_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e];
const OID_ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const OID_ECDSA_SHA224: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, … }`;
/// returns the algorithm's OID contents.
fn signature_algorithm_oid(der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (cert, _) = der_element(der, SEQUENCE)?;
    let (_tbs, rest) = der_element(cert, SEQUENCE)?;
    let (alg, _) = der_element(rest, SEQUENCE)?;
    let (oid, _) = der_element(alg, OID)?;
    Some(oid)
}

/// Splits one DER element with the expected tag off `input`: (contents, remainder).
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, rest) = rest.split_first()?;
    let (len, rest) = if len_byte < 0x80 {
        (usize::from(len_byte), rest)
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_walk_rejects_truncated_input_without_panicking() {
        assert!(signature_algorithm_oid(&[]).is_none());
        assert!(signature_algorithm_oid(&[0x30]).is_none());
        assert!(signature_algorithm_oid(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(signature_algorithm_oid(&[0x30, 0x02, 0x30, 0x00]).is_none());
        for len in 0..64u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            let _ = channel_binding_hash(&bytes);
        }
    }

    #[test]
    fn finds_the_signature_algorithm_of_a_minimal_certificate() {
        // SEQUENCE { SEQUENCE {} , SEQUENCE { OID ecdsa-with-SHA256 }, BIT STRING {} }
        let mut alg = vec![0x06, OID_ECDSA_SHA256.len() as u8];
        alg.extend_from_slice(OID_ECDSA_SHA256);
        let mut body = vec![0x30, 0x00, 0x30, alg.len() as u8];
        body.extend_from_slice(&alg);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut cert = vec![0x30, body.len() as u8];
        cert.extend_from_slice(&body);
        assert_eq!(signature_algorithm_oid(&cert), Some(OID_ECDSA_SHA256));
        assert_eq!(channel_binding_hash(&cert).map(|h| h.len()), Some(32));
    }

    #[test]
    fn disable_and_unix_sockets_mean_no_tls() {
        let tcp = HostSpec {
            host: Host::Tcp("localhost".into()),
            hostaddr: None,
            port: 5432,
        };
        let unix = HostSpec {
            host: Host::Unix("/tmp".into()),
            hostaddr: None,
            port: 5432,
        };
        let disabled = SslConfig {
            mode: SslMode::Disable,
            ..SslConfig::default()
        };
        assert!(prepare(&disabled, &tcp, false).unwrap().is_none());
        assert!(
            prepare(&SslConfig::default(), &unix, false)
                .unwrap()
                .is_none()
        );
        assert!(
            prepare(&SslConfig::default(), &tcp, false)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn verification_without_roots_is_refused() {
        let tcp = HostSpec {
            host: Host::Tcp("localhost".into()),
            hostaddr: None,
            port: 5432,
        };
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let ssl = SslConfig {
                mode,
                ..SslConfig::default()
            };
            assert!(matches!(
                prepare(&ssl, &tcp, false),
                Err(TlsError::RootCertMissing { .. })
            ));
        }
        let system = SslConfig {
            mode: SslMode::Require,
            rootcert: Some(RootCert::System),
            ..SslConfig::default()
        };
        assert!(matches!(
            prepare(&system, &tcp, false),
            Err(TlsError::WeakModeWithSystemRoots { .. })
        ));
    }
}
