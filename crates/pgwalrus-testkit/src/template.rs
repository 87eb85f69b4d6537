//! Provisioned data directories: initdb, the harness's `pg_hba.conf` and
//! include line, and the test roles; plus a per-installation cache of one
//! such directory (the *template*) that clusters copy instead of running
//! initdb.
//!
//! Templates live in `<cache dir>/templates/<major>-<hash>/data`, where the
//! hash covers the bindir, the `postgres --version` output, the binary's size
//! and mtime, and the provisioning recipe. A template is built in a temporary
//! directory under an exclusive `flock` on `<major>-<hash>.lock` (so parallel
//! test processes build it once) and published with a rename. Every copy of a
//! template shares its system identifier.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{INCLUDE_FILE, INCLUDE_LINE, pg_hba, provisioning_conf, roles_sql};
use crate::pgbin::PgBin;
use crate::psql::run_psql;
use crate::util::{
    cache_dir, chmod, conninfo_value, fnv1a, give_to_server_user, kill_postmaster_tree, mkdir,
    pid_file_pid, rename, run, server_command,
};

/// Bump when the provisioning recipe changes in a way the hash misses.
const RECIPE_VERSION: &str = "pgwalrus-testkit template v1";

/// Arguments every initdb gets (before the caller's extra arguments).
const INITDB_ARGS: &[&str] = &[
    "-U",
    "postgres",
    "-A",
    "trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
    "--no-instructions",
];

/// Writes a file the server reads, owned by the server user, mode 0600.
pub(crate) fn write_server_file(path: &Path, contents: &str) {
    fs::write(path, contents)
        .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot write {}: {e}", path.display()));
    chmod(path, 0o600);
    give_to_server_user(path);
}

/// Appends the include line to `data/postgresql.conf` unless present.
pub(crate) fn ensure_include_line(data: &Path) {
    let conf = data.join("postgresql.conf");
    let text = fs::read_to_string(&conf).unwrap_or_default();
    if text.lines().any(|l| l.trim() == INCLUDE_LINE) {
        return;
    }
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&conf)
        .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot open {}: {e}", conf.display()));
    writeln!(file, "\n# Added by pgwalrus-testkit: per-cluster port, socket dir, TLS files, test settings.\n{INCLUDE_LINE}")
        .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot append to {}: {e}", conf.display()));
    drop(file);
    give_to_server_user(&conf);
}

/// Runs `pg_ctl` with the given arguments for `data`.
pub(crate) fn pg_ctl(pg: &PgBin, data: &Path, args: &[&str], what: &str) -> Result<String, String> {
    let mut cmd = server_command(pg.tool("pg_ctl"));
    cmd.arg("-D").arg(data).args(args);
    run(&mut cmd, what)
}

/// Creates `work/data`: initdb (with `initdb_args` appended), the include
/// line, `pg_hba.conf`, and the test roles; leaves the server stopped.
/// `work` must exist and be writable by this process.
pub(crate) fn provision(pg: &PgBin, work: &Path, initdb_args: &[String]) -> Result<(), String> {
    let data = work.join("data");
    let sock = work.join("provision-sock");
    let log = work.join("provision.log");
    for dir in [&data, &sock] {
        mkdir(dir, 0o700).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        give_to_server_user(dir);
    }
    fs::write(&log, "").map_err(|e| format!("creating {}: {e}", log.display()))?;
    give_to_server_user(&log);

    let mut initdb = server_command(pg.tool("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(INITDB_ARGS)
        .args(initdb_args);
    run(&mut initdb, "initdb")?;

    ensure_include_line(&data);
    write_server_file(&data.join("pg_hba.conf"), &pg_hba());
    write_server_file(&data.join(INCLUDE_FILE), &provisioning_conf(&sock));

    let log_arg = log.to_string_lossy();
    let result = pg_ctl(
        pg,
        &data,
        &["-l", &log_arg, "-w", "-t", "60", "start"],
        "pg_ctl start (provisioning)",
    )
    .and_then(|_| {
        let conninfo = format!(
            "host={} port=5432 user=postgres dbname=postgres",
            conninfo_value(&sock.to_string_lossy())
        );
        run_psql(&conninfo, &[], &roles_sql())
    })
    .and_then(|_| {
        pg_ctl(
            pg,
            &data,
            &["-m", "fast", "-w", "-t", "60", "stop"],
            "pg_ctl stop (provisioning)",
        )
    });
    if let Err(e) = result {
        if let Some(pid) = pid_file_pid(&data) {
            kill_postmaster_tree(pid, &data);
        }
        let log_text = fs::read_to_string(&log).unwrap_or_default();
        return Err(format!(
            "provisioning a data directory with {}: {e}\n--- server log ---\n{log_text}",
            pg.bindir.display()
        ));
    }
    let _ = fs::remove_file(data.join(INCLUDE_FILE));
    let _ = fs::remove_dir_all(&sock);
    let _ = fs::remove_file(&log);
    Ok(())
}

/// Cache key of an installation's template.
fn template_key(pg: &PgBin) -> String {
    let postgres = pg.tool("postgres");
    let meta = fs::metadata(&postgres)
        .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot stat {}: {e}", postgres.display()));
    let hash = fnv1a(&[
        RECIPE_VERSION.as_bytes(),
        pg.bindir.as_os_str().as_encoded_bytes(),
        pg.version().as_bytes(),
        &meta.len().to_le_bytes(),
        &meta.mtime().to_le_bytes(),
        &meta.mtime_nsec().to_le_bytes(),
        INITDB_ARGS.join(" ").as_bytes(),
        pg_hba().as_bytes(),
        roles_sql().as_bytes(),
    ]);
    format!("{}-{hash:016x}", pg.major)
}

/// The template data directory of `pg`, building it on first use.
pub(crate) fn template_data_dir(pg: &PgBin) -> PathBuf {
    static MEMO: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    // Held while building: threads of this process wait for one build.
    let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    let memo = memo.get_or_insert_with(HashMap::new);
    let key = template_key(pg);
    if let Some(dir) = memo.get(&key).filter(|d| d.is_dir()) {
        return dir.clone();
    }
    let templates = cache_dir().join("templates");
    if let Err(e) = mkdir(&templates, 0o755)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        panic!(
            "pgwalrus-testkit: cannot create {}: {e}",
            templates.display()
        );
    }
    let published = templates.join(&key);
    if !published.join("data").is_dir() {
        let lock_path = templates.join(format!("{key}.lock"));
        let lock = fs::File::create(&lock_path).unwrap_or_else(|e| {
            panic!(
                "pgwalrus-testkit: cannot create {}: {e}",
                lock_path.display()
            )
        });
        lock.lock().unwrap_or_else(|e| {
            panic!("pgwalrus-testkit: cannot lock {}: {e}", lock_path.display())
        });
        if !published.join("data").is_dir() {
            build(pg, &templates, &key, &published);
        }
        drop(lock); // closing the file releases the flock
    }
    let data = published.join("data");
    memo.insert(key, data.clone());
    data
}

/// Builds and publishes a template; the caller holds the lock.
fn build(pg: &PgBin, templates: &Path, key: &str, published: &Path) {
    // Leftovers of builders that died (we hold the lock: none is running).
    let stale_prefix = format!("{key}.tmp-");
    if let Ok(entries) = fs::read_dir(templates) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&stale_prefix)
            {
                let data = entry.path().join("data");
                if let Some(pid) = pid_file_pid(&data) {
                    kill_postmaster_tree(pid, &data);
                }
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let _ = fs::remove_dir_all(published); // an incomplete leftover, if any
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = templates.join(format!(
        "{stale_prefix}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    mkdir(&tmp, 0o755)
        .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot create {}: {e}", tmp.display()));
    if let Err(e) = provision(pg, &tmp, &[]) {
        let _ = fs::remove_dir_all(&tmp);
        panic!("pgwalrus-testkit: building the template data directory failed: {e}");
    }
    if let Err(e) = rename(&tmp, published) {
        let _ = fs::remove_dir_all(&tmp);
        panic!(
            "pgwalrus-testkit: cannot publish template {}: {e}",
            published.display()
        );
    }
}
