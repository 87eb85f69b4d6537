//! TLS material for test clusters, generated with the `openssl` CLI.
//!
//! One set of EC P-256 keys and certificates is generated per machine into
//! `<cache dir>/tls-v1` (published atomically by renaming a finished temporary
//! directory, so parallel test threads and processes are safe) and copied
//! into each cluster:
//!
//! * a CA (`CN=pgwalrus-testkit CA`) that signs everything below;
//! * a server certificate whose subjectAltName is **only** `DNS:localhost`:
//!   `host=localhost hostaddr=127.0.0.1 sslmode=verify-full` passes,
//!   `host=127.0.0.1 sslmode=verify-full` fails with a name mismatch;
//! * a client certificate with `CN=` [`CERT_USER`](crate::CERT_USER);
//! * an unrelated second CA (`other_ca_cert`) for "unknown issuer" tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::util::{cache_dir, chmod, fnv1a, give_to_server_user, mkdir, rename, run};

/// Name of the per-machine cache directory under the cache directory; bump
/// the suffix when the generated material changes.
const CACHE_NAME: &str = "tls-v1";

/// Certificate validity; the cache lives as long as the temp dir.
const DAYS: &str = "3650";

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// TLS files of one cluster. Everything is readable by the test process;
/// key files have mode 0600. The client-side files live in the cluster's
/// `tls/` directory, the server's copies in `server-tls/` (owned by the
/// server OS user when running as root).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// CA certificate that signed the server and client certificates (use as
    /// `sslrootcert`).
    pub ca_cert: PathBuf,
    /// CA private key (for [`TlsFiles::issue_client_cert`] or custom certs).
    pub ca_key: PathBuf,
    /// Client certificate with `CN=`[`CERT_USER`](crate::CERT_USER) (`sslcert`).
    pub client_cert: PathBuf,
    /// Private key of [`TlsFiles::client_cert`] (`sslkey`), mode 0600.
    pub client_key: PathBuf,
    /// The server's certificate (SAN `DNS:localhost` only), as the server uses it.
    pub server_cert: PathBuf,
    /// The server's private key, mode 0600.
    pub server_key: PathBuf,
    /// A CA certificate unrelated to the server's: verification against it fails.
    pub other_ca_cert: PathBuf,
    /// Directory holding the client-side files; issued certificates go here.
    pub dir: PathBuf,
}

impl TlsFiles {
    /// Issues a client certificate with `CN=common_name` signed by the
    /// cluster's CA; returns `(cert, key)` paths (key mode 0600) in
    /// [`TlsFiles::dir`]. Panics if openssl fails.
    pub fn issue_client_cert(&self, common_name: &str) -> (PathBuf, PathBuf) {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let stem: String = common_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let stem = format!("issued-{seq}-{stem}");
        let cnf = self.dir.join("openssl.cnf");
        if !cnf.exists() {
            fs::write(&cnf, OPENSSL_CNF).unwrap_or_else(|e| {
                panic!("pgwalrus-testkit: cannot write {}: {e}", cnf.display())
            });
        }
        let serial = fnv1a(&[
            common_name.as_bytes(),
            &seq.to_le_bytes(),
            &std::process::id().to_le_bytes(),
            self.dir.as_os_str().as_encoded_bytes(),
        ]) >> 2;
        let cert = self.dir.join(format!("{stem}.crt"));
        let key = self.dir.join(format!("{stem}.key"));
        issue(
            &self.dir,
            &stem,
            &format!("/CN={common_name}"),
            "v3_client",
            &self.ca_cert,
            &self.ca_key,
            serial,
        )
        .unwrap_or_else(|e| {
            panic!("pgwalrus-testkit: issuing a client certificate for {common_name:?}: {e}")
        });
        chmod(&key, 0o600);
        (cert, key)
    }
}

/// Copies the cached TLS material into `cluster_root/tls` (client side) and
/// `cluster_root/server-tls` (server side).
pub(crate) fn install(cluster_root: &Path) -> TlsFiles {
    let cache = tls_cache_dir();
    let client_dir = cluster_root.join("tls");
    let server_dir = cluster_root.join("server-tls");
    let copy = |name: &str, dir: &Path, mode: u32| -> PathBuf {
        let to = dir.join(name);
        fs::copy(cache.join(name), &to).unwrap_or_else(|e| {
            panic!(
                "pgwalrus-testkit: cannot copy TLS file {name} to {}: {e}",
                to.display()
            )
        });
        chmod(&to, mode);
        to
    };
    for dir in [&client_dir, &server_dir] {
        mkdir(dir, 0o700)
            .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot create {}: {e}", dir.display()));
    }
    let files = TlsFiles {
        ca_cert: copy("ca.crt", &client_dir, 0o644),
        ca_key: copy("ca.key", &client_dir, 0o600),
        client_cert: copy("client.crt", &client_dir, 0o644),
        client_key: copy("client.key", &client_dir, 0o600),
        other_ca_cert: copy("other-ca.crt", &client_dir, 0o644),
        server_cert: copy("server.crt", &server_dir, 0o644),
        server_key: copy("server.key", &server_dir, 0o600),
        dir: client_dir,
    };
    copy("ca.crt", &server_dir, 0o644);
    give_to_server_user(&server_dir);
    files
}

/// The per-machine cache directory, generated on first use.
fn tls_cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = cache_dir().join(CACHE_NAME);
        if dir.is_dir() {
            return dir;
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = cache_dir().join(format!(
            "{CACHE_NAME}.tmp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&tmp);
        mkdir(&tmp, 0o755)
            .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot create {}: {e}", tmp.display()));
        if let Err(e) = generate(&tmp) {
            let _ = fs::remove_dir_all(&tmp);
            panic!("pgwalrus-testkit: generating TLS certificates with openssl: {e}");
        }
        // Losing the race to another process leaves its (equivalent) copy.
        if rename(&tmp, &dir).is_err() {
            let _ = fs::remove_dir_all(&tmp);
            assert!(
                dir.is_dir(),
                "pgwalrus-testkit: cannot publish TLS cache {}",
                dir.display()
            );
        }
        dir
    })
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    run(
        &mut cmd,
        &format!("openssl {}", args.first().copied().unwrap_or_default()),
    )
    .map(drop)
}

fn gen_key(dir: &Path, key: &str) -> Result<(), String> {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            key,
        ],
    )?;
    chmod(&dir.join(key), 0o600);
    Ok(())
}

fn self_signed_ca(dir: &Path, stem: &str, cn: &str) -> Result<(), String> {
    let key = format!("{stem}.key");
    gen_key(dir, &key)?;
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-config",
            "openssl.cnf",
            "-extensions",
            "v3_ca",
            "-key",
            &key,
            "-subj",
            cn,
            "-days",
            DAYS,
            "-sha256",
            "-out",
            &format!("{stem}.crt"),
        ],
    )
}

/// Creates `<stem>.key` and `<stem>.crt` in `dir` (which holds openssl.cnf),
/// signed by the given CA with the given extension section.
fn issue(
    dir: &Path,
    stem: &str,
    subject: &str,
    extensions: &str,
    ca_cert: &Path,
    ca_key: &Path,
    serial: u64,
) -> Result<(), String> {
    let key = format!("{stem}.key");
    let csr = format!("{stem}.csr");
    gen_key(dir, &key)?;
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-config",
            "openssl.cnf",
            "-key",
            &key,
            "-subj",
            subject,
            "-out",
            &csr,
        ],
    )?;
    let (ca_cert, ca_key) = (ca_cert.to_string_lossy(), ca_key.to_string_lossy());
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-set_serial",
            &serial.max(2).to_string(),
            "-days",
            DAYS,
            "-sha256",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            extensions,
            "-out",
            &format!("{stem}.crt"),
        ],
    )?;
    let _ = fs::remove_file(dir.join(csr));
    Ok(())
}

fn generate(dir: &Path) -> Result<(), String> {
    fs::write(dir.join("openssl.cnf"), OPENSSL_CNF)
        .map_err(|e| format!("writing openssl.cnf: {e}"))?;
    self_signed_ca(dir, "ca", "/CN=pgwalrus-testkit CA")?;
    self_signed_ca(dir, "other-ca", "/CN=pgwalrus-testkit unrelated CA")?;
    let (ca_cert, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    issue(
        dir,
        "server",
        "/CN=localhost",
        "v3_server",
        &ca_cert,
        &ca_key,
        2,
    )?;
    issue(
        dir,
        "client",
        &format!("/CN={}", crate::CERT_USER),
        "v3_client",
        &ca_cert,
        &ca_key,
        3,
    )?;
    for cert in ["ca.crt", "other-ca.crt", "server.crt", "client.crt"] {
        chmod(&dir.join(cert), 0o644);
    }
    Ok(())
}
