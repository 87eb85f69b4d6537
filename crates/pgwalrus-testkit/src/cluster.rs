//! Throwaway PostgreSQL clusters: [`ClusterBuilder`] and [`Cluster`].
//!
//! Each cluster lives in its own directory [`clusters_dir`](crate::clusters_dir)`/c-<pid>-<n>/`
//! (tmpfs `/dev/shm` by default, for speed):
//!
//! * `data/` — the data directory (a copy of the cached template unless a
//!   fresh initdb or a source data directory was requested);
//! * `sock/` — the private unix socket directory;
//! * `server.log` — the server's stderr (`pg_ctl -l`);
//! * `tls/`, `server-tls/` — client- and server-side TLS files;
//! * `owner` — pid and start time of the test process that owns it.
//!
//! Dropping a [`Cluster`] (also while unwinding from a panic) stops the
//! server with `pg_ctl stop -m immediate`, SIGKILLs the postmaster and its
//! children if they survive, and removes the directory. Directories left by
//! test processes that died without unwinding (SIGKILL, abort) are reaped,
//! servers included, by the first cluster a later test process creates.

use std::fmt::Display;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::SUPERUSER;
use crate::config::{ConfInputs, INCLUDE_FILE, cluster_conf, pg_hba};
use crate::pgbin::PgBin;
use crate::psql::run_psql;
use crate::template::{
    ensure_include_line, pg_ctl, provision, template_data_dir, write_server_file,
};
use crate::tls::{self, TlsFiles};
use crate::util::{
    children_of, clusters_dir, conninfo_value, copy_tree, give_to_server_user, is_postmaster_of,
    kill_postmaster_tree, mkdir, now, pid_file_pid, process_alive, process_exists,
    process_start_time, send_signal, wait_until,
};

/// Environment variable: when set to `1`, a cluster dropped while its test
/// panics keeps its directory (server log, data dir) for inspection. The
/// server is stopped either way.
pub const KEEP_ENV: &str = "PGWALRUS_TESTKIT_KEEP";

/// How many times the first start retries on a TCP port clash.
const PORT_ATTEMPTS: usize = 5;

/// Lines of server log included in panic messages.
const LOG_TAIL_LINES: usize = 200;

/// Configures a [`Cluster`] before starting it; see [`Cluster::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until .start()"]
pub struct ClusterBuilder {
    pg: PgBin,
    settings: Vec<(String, String)>,
    fresh: bool,
    initdb_args: Vec<String>,
    source: Option<PathBuf>,
}

impl ClusterBuilder {
    /// Adds a `postgresql.conf` setting, written after the harness defaults
    /// (so it overrides them). The value is always single-quoted and escaped
    /// for you: `.setting("archive_command", "cp %p '/dir/%f'")`,
    /// `.setting("wal_keep_size", "1GB")`, `.setting("fsync", "off")`.
    /// Do not set `port`, `listen_addresses` or `unix_socket_directories`.
    pub fn setting(mut self, name: &str, value: impl Display) -> Self {
        self.settings.push((name.to_owned(), value.to_string()));
        self
    }

    /// Runs a real initdb instead of copying the cached template, giving the
    /// cluster its own system identifier (template copies share one).
    /// Costs about a second more.
    pub fn fresh_initdb(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }

    /// Adds an initdb argument (e.g. `--wal-segsize=1`, `--data-checksums`);
    /// implies [`ClusterBuilder::fresh_initdb`]`(true)`.
    pub fn initdb_arg(mut self, arg: impl Into<String>) -> Self {
        self.initdb_args.push(arg.into());
        self.fresh = true;
        self
    }

    /// Starts from a copy of an existing data directory (a `pg_basebackup`
    /// output, a restored backup, a stopped cluster's `data_dir()`) instead of
    /// the template. The copy gets the harness's `pg_hba.conf` and include
    /// file; its own `postgresql.auto.conf` and signal files
    /// (`standby.signal`, `recovery.signal`) are kept. Roles come from the
    /// source.
    pub fn from_data_dir(mut self, source: impl Into<PathBuf>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Creates and starts the cluster, waiting until it accepts connections
    /// (`pg_ctl start -w`). Panics with the server log if it does not start.
    pub fn start(self) -> Cluster {
        reap_stale_clusters();
        let root = new_cluster_root();
        let guard = RootGuard(Some(root.clone()));
        let tls = tls::install(&root);
        let sock = root.join("sock");
        mkdir(&sock, 0o755)
            .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot create {}: {e}", sock.display()));
        give_to_server_user(&sock);
        let log = root.join("server.log");
        fs::write(&log, "")
            .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot create {}: {e}", log.display()));
        give_to_server_user(&log);
        guard.disarm();

        let mut cluster = Cluster {
            pg: self.pg,
            data: root.join("data"),
            root,
            sock,
            log,
            port: 0,
            tls,
            settings: self.settings,
            pid: Mutex::new(None),
        };
        cluster.create_data_dir(self.fresh, &self.initdb_args, self.source.as_deref());
        cluster.first_start();
        cluster
    }
}

/// Removes a half-created cluster directory if setup panics.
struct RootGuard(Option<PathBuf>);

impl RootGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        if let Some(root) = self.0.take() {
            let _ = fs::remove_dir_all(root);
        }
    }
}

/// A running (or stopped) throwaway PostgreSQL cluster owned by one test.
///
/// Listens on 127.0.0.1 at [`Cluster::port`] and on a private unix socket
/// directory; has the roles of the crate-level constants and TLS on. All
/// methods take `&self`, so a cluster can be shared between threads.
#[derive(Debug)]
pub struct Cluster {
    pg: PgBin,
    root: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    port: u16,
    tls: TlsFiles,
    settings: Vec<(String, String)>,
    /// Postmaster pid while the harness believes the server runs.
    pid: Mutex<Option<u32>>,
}

impl Cluster {
    /// A builder for a cluster of the installation `pg`.
    pub fn builder(pg: &PgBin) -> ClusterBuilder {
        ClusterBuilder {
            pg: pg.clone(),
            settings: Vec::new(),
            fresh: false,
            initdb_args: Vec::new(),
            source: None,
        }
    }

    /// Starts a cluster with default settings (`Cluster::builder(pg).start()`).
    pub fn start_default(pg: &PgBin) -> Cluster {
        Cluster::builder(pg).start()
    }

    /// The installation this cluster runs.
    pub fn pg(&self) -> &PgBin {
        &self.pg
    }

    /// Server major version.
    pub fn major(&self) -> u32 {
        self.pg.major
    }

    /// TCP port on 127.0.0.1 (also the unix socket's port number).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private unix socket directory (`host=` for socket connections).
    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// `data_dir()/pg_wal`.
    pub fn pg_wal_dir(&self) -> PathBuf {
        self.data.join("pg_wal")
    }

    /// The cluster's own directory (holds data, socket, log, TLS files);
    /// removed on drop, so tests may put scratch files here.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// Path of the server log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Contents of the server log.
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// TLS files: CA, client certificate and key for [`CERT_USER`](crate::CERT_USER), ….
    pub fn tls(&self) -> &TlsFiles {
        &self.tls
    }

    /// `host=127.0.0.1 port=P user=U dbname=replication`; append `sslmode`,
    /// `password`, `replication=true`, … as needed (later keywords win, so
    /// `dbname=postgres` may be appended too).
    pub fn conninfo(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={} dbname=replication",
            self.port,
            conninfo_value(user)
        )
    }

    /// Like [`Cluster::conninfo`] but through the unix socket directory.
    pub fn socket_conninfo(&self, user: &str) -> String {
        format!(
            "host={} port={} user={} dbname=replication",
            conninfo_value(&self.sock.to_string_lossy()),
            self.port,
            conninfo_value(user)
        )
    }

    /// Runs SQL as the superuser `postgres` over the unix socket, database
    /// `postgres` (see [`run_psql`] for the output format). Panics with
    /// psql's stderr and the server log on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql).unwrap_or_else(|e| {
            panic!(
                "pgwalrus-testkit: SQL failed: {sql}\n{e}\n{}",
                self.log_tail()
            )
        })
    }

    /// Runs SQL as the superuser over the unix socket; `Err` carries stderr.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let conninfo = format!("{} dbname=postgres", self.socket_conninfo(SUPERUSER));
        run_psql(&conninfo, &[], sql)
    }

    /// Runs SQL as `user` over TCP (`conninfo(user)` with `dbname=postgres`),
    /// with extra environment such as `PGPASSWORD`, `PGSSLMODE`,
    /// `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`.
    pub fn try_psql_as(
        &self,
        user: &str,
        envs: &[(&str, &str)],
        sql: &str,
    ) -> Result<String, String> {
        run_psql(
            &format!("{} dbname=postgres", self.conninfo(user)),
            envs,
            sql,
        )
    }

    /// Debian's `pgbench` (15, which works against every major) as the superuser over TCP,
    /// database `postgres`, with none of the machine's environment, ready to run `args`.
    pub fn pgbench(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(crate::debian_bin("pgbench"));
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PGPASSFILE", "/nonexistent")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .args(args)
            .arg("postgres");
        cmd
    }

    /// The cluster's system identifier (from `pg_control_system()`).
    pub fn system_identifier(&self) -> u64 {
        let out = self.psql("SELECT system_identifier FROM pg_control_system()");
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("pgwalrus-testkit: bad system identifier {out:?}: {e}"))
    }

    /// `pg_current_wal_lsn()` as text, e.g. `0/3000148`.
    pub fn current_wal_lsn(&self) -> String {
        self.psql("SELECT pg_current_wal_lsn()")
    }

    /// Writes a little WAL (a commit record) and forces a WAL segment switch;
    /// returns the name of the segment that was completed, e.g.
    /// `000000010000000000000003`.
    pub fn switch_wal(&self) -> String {
        let out =
            self.psql("SELECT pg_current_xact_id();\nSELECT pg_walfile_name(pg_switch_wal());");
        out.lines().last().unwrap_or_default().to_owned()
    }

    /// The postmaster pid. Panics if the harness did not start the server or
    /// it was stopped or killed since.
    pub fn pid(&self) -> u32 {
        self.state().unwrap_or_else(|| {
            panic!(
                "pgwalrus-testkit: the cluster in {} is not running",
                self.root.display()
            )
        })
    }

    /// Whether the postmaster started by the harness is alive.
    pub fn is_running(&self) -> bool {
        self.state().is_some_and(process_alive)
    }

    /// Stops the server (`pg_ctl stop -m fast -w`) and waits until the
    /// postmaster has exited; panics with the log if that fails.
    pub fn stop(&self) {
        let mut state = self.state_lock();
        let result = pg_ctl(
            &self.pg,
            &self.data,
            &["-m", "fast", "-w", "-t", "60", "stop"],
            "pg_ctl stop",
        );
        if let Err(e) = result {
            panic!(
                "pgwalrus-testkit: stopping the cluster failed: {e}\n{}",
                self.log_tail()
            );
        }
        // pg_ctl returns once postmaster.pid is gone, slightly before the
        // postmaster has exited.
        if let Some(pid) = state.take() {
            assert!(
                wait_until(Duration::from_secs(30), || !process_alive(pid)),
                "pgwalrus-testkit: postmaster {pid} still runs after pg_ctl stop\n{}",
                self.log_tail()
            );
        }
    }

    /// Crashes the server the way an operator would: `pg_ctl stop -m immediate -w` (every
    /// process quits at once, no checkpoint, walsenders drop their connections), then waits
    /// until the postmaster has exited; panics with the log if that fails. `start()` then
    /// runs crash recovery.
    pub fn stop_immediate(&self) {
        let mut state = self.state_lock();
        if let Err(e) = pg_ctl(
            &self.pg,
            &self.data,
            &["-m", "immediate", "-w", "-t", "60", "stop"],
            "pg_ctl stop -m immediate",
        ) {
            panic!(
                "pgwalrus-testkit: stopping the cluster (immediate) failed: {e}\n{}",
                self.log_tail()
            );
        }
        if let Some(pid) = state.take() {
            assert!(
                wait_until(Duration::from_secs(30), || !process_alive(pid)),
                "pgwalrus-testkit: postmaster {pid} still runs after pg_ctl stop -m immediate\n{}",
                self.log_tail()
            );
        }
    }

    /// Starts the stopped (or killed) server again, on the same port;
    /// panics with the log if it does not come up.
    pub fn start(&self) {
        let mut state = self.state_lock();
        assert!(
            !state.is_some_and(process_alive),
            "pgwalrus-testkit: start() on a running cluster ({})",
            self.root.display()
        );
        *state = Some(self.pg_ctl_start().unwrap_or_else(|e| {
            panic!(
                "pgwalrus-testkit: starting the cluster failed: {e}\n{}",
                self.log_tail()
            )
        }));
    }

    /// [`Cluster::stop`] then [`Cluster::start`].
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    /// Makes the server re-read its configuration (`pg_ctl reload`, i.e.
    /// SIGHUP). Asynchronous: the server applies it shortly after.
    pub fn reload(&self) {
        let _state = self.state_lock();
        if let Err(e) = pg_ctl(&self.pg, &self.data, &["reload"], "pg_ctl reload") {
            panic!(
                "pgwalrus-testkit: reloading the cluster failed: {e}\n{}",
                self.log_tail()
            );
        }
    }

    /// Simulates a crash: SIGKILLs the postmaster and waits until it and its
    /// children are gone (children get 10 s to notice the postmaster's death
    /// on their own, then are SIGKILLed). `start()` then runs crash recovery.
    pub fn kill9(&self) {
        let mut state = self.state_lock();
        let pid = state.take().unwrap_or_else(|| {
            panic!("pgwalrus-testkit: kill9() on a cluster that is not running")
        });
        assert!(
            is_postmaster_of(pid, &self.data),
            "pgwalrus-testkit: kill9(): pid {pid} is not this cluster's postmaster"
        );
        let children = children_of(pid);
        send_signal("KILL", pid);
        let gone = || !process_alive(pid) && children.iter().all(|&c| !process_alive(c));
        if !wait_until(Duration::from_secs(10), gone) {
            for &child in &children {
                send_signal("KILL", child);
            }
            assert!(
                wait_until(Duration::from_secs(10), gone),
                "pgwalrus-testkit: postmaster {pid} or its children survived SIGKILL"
            );
        }
        // A new postmaster refuses to start while the old pid exists, and a
        // zombie still exists: give the reaper (init) time to collect it.
        wait_until(Duration::from_secs(10), || !process_exists(pid));
    }

    fn state(&self) -> Option<u32> {
        *self.state_lock()
    }

    fn state_lock(&self) -> MutexGuard<'_, Option<u32>> {
        self.pid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last lines of the server log, for panic messages.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- server log {} (last {} lines) ---\n{}",
            self.log.display(),
            lines.len() - start,
            lines[start..].join("\n")
        )
    }

    fn create_data_dir(&self, fresh: bool, initdb_args: &[String], source: Option<&Path>) {
        if let Some(source) = source {
            copy_tree(source, &self.data).unwrap_or_else(|e| panic!("pgwalrus-testkit: {e}"));
            // The copy is not in use; a copied lock file would confuse startup.
            let _ = fs::remove_file(self.data.join("postmaster.pid"));
            crate::util::chmod(&self.data, 0o700);
            give_to_server_user(&self.data);
            ensure_include_line(&self.data);
            write_server_file(&self.data.join("pg_hba.conf"), &pg_hba());
        } else if fresh {
            // Provisions root/data in place (its scratch socket and log are removed).
            provision(&self.pg, &self.root, initdb_args)
                .unwrap_or_else(|e| panic!("pgwalrus-testkit: {e}"));
        } else {
            let template = template_data_dir(&self.pg);
            // `cp -a` keeps the server user's ownership of the template.
            copy_tree(&template, &self.data).unwrap_or_else(|e| panic!("pgwalrus-testkit: {e}"));
        }
    }

    fn write_conf(&self) {
        let conf = cluster_conf(&ConfInputs {
            port: self.port,
            socket_dir: &self.sock,
            server_cert: &self.tls.server_cert,
            server_key: &self.tls.server_key,
            ca_cert: &self.root.join("server-tls").join("ca.crt"),
            settings: &self.settings,
        });
        write_server_file(&self.data.join(INCLUDE_FILE), &conf);
    }

    /// First start: picks a free port, retrying on a clash.
    fn first_start(&mut self) {
        for attempt in 1..=PORT_ATTEMPTS {
            self.port = free_port();
            self.write_conf();
            let log_before = self.log().len();
            match self.pg_ctl_start() {
                Ok(pid) => {
                    *self.state_lock() = Some(pid);
                    return;
                }
                Err(e) => {
                    let new_log = self.log().get(log_before..).unwrap_or_default().to_owned();
                    let clash = new_log.contains("Address already in use")
                        || new_log.contains("could not create any TCP/IP sockets");
                    if clash && attempt < PORT_ATTEMPTS {
                        continue;
                    }
                    panic!(
                        "pgwalrus-testkit: starting a PostgreSQL {} cluster ({}) failed: {e}\n{}",
                        self.pg.major,
                        self.pg.bindir.display(),
                        self.log_tail()
                    );
                }
            }
        }
    }

    /// `pg_ctl start -w`; returns the postmaster pid.
    fn pg_ctl_start(&self) -> Result<u32, String> {
        let log = self.log.to_string_lossy();
        pg_ctl(
            &self.pg,
            &self.data,
            &["-l", &log, "-w", "-t", "60", "start"],
            "pg_ctl start",
        )?;
        let pid = pid_file_pid(&self.data)
            .ok_or("pg_ctl start succeeded but postmaster.pid has no pid")?;
        // Drop's SIGKILL fallback identifies the postmaster by its command line.
        if !is_postmaster_of(pid, &self.data) {
            return Err(format!(
                "pid {pid} from postmaster.pid does not look like the postmaster of {}",
                self.data.display()
            ));
        }
        Ok(pid)
    }

    /// Stops the server however possible, never panicking.
    fn force_stop(&mut self) {
        let recorded = self.pid.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        let mut pids: Vec<u32> = recorded
            .into_iter()
            .chain(pid_file_pid(&self.data))
            .collect();
        pids.dedup();
        if pids.iter().any(|&pid| is_postmaster_of(pid, &self.data)) {
            let _ = pg_ctl(
                &self.pg,
                &self.data,
                &["-m", "immediate", "-w", "-t", "10", "stop"],
                "pg_ctl stop",
            );
        }
        for pid in pids {
            kill_postmaster_tree(pid, &self.data);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.force_stop();
        if std::thread::panicking() && std::env::var_os(KEEP_ENV).is_some_and(|v| v == "1") {
            #[allow(
                clippy::print_stderr,
                reason = "tell the developer where the kept cluster is"
            )]
            {
                eprintln!(
                    "pgwalrus-testkit: {KEEP_ENV}=1, keeping {}",
                    self.root.display()
                );
            }
            return;
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read
/// it, close). Ports already handed out in this process are skipped.
pub(crate) fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| {
                panic!("pgwalrus-testkit: cannot bind 127.0.0.1:0 to find a free port: {e}")
            });
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
    panic!("pgwalrus-testkit: no unused free port found");
}

/// Creates `<clusters dir>/c-<pid>-<n>` (mode 0755) with its `owner` file.
fn new_cluster_root() -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let me = std::process::id();
    loop {
        let root = clusters_dir().join(format!("c-{me}-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
        match mkdir(&root, 0o755) {
            Ok(()) => {
                let owner = format!("{me} {}\n", process_start_time(me).unwrap_or(0));
                fs::write(root.join("owner"), owner).unwrap_or_else(|e| {
                    panic!(
                        "pgwalrus-testkit: cannot write {}/owner: {e}",
                        root.display()
                    )
                });
                return root;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("pgwalrus-testkit: cannot create {}: {e}", root.display()),
        }
    }
}

/// Once per process: removes cluster directories (and SIGKILLs their
/// servers) whose owning test process is gone.
fn reap_stale_clusters() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Ok(entries) = fs::read_dir(clusters_dir()) else {
            return;
        };
        let started = now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(owner_pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("c-"))
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let root = entry.path();
            let recorded_start = fs::read_to_string(root.join("owner"))
                .ok()
                .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok());
            let owner_alive = match (process_start_time(owner_pid), recorded_start) {
                (None, _) => false,
                // No owner file yet: being created right now by a live process.
                (Some(_), None) => true,
                (Some(actual), Some(recorded)) => actual == recorded && process_alive(owner_pid),
            };
            if owner_alive {
                continue;
            }
            let data = root.join("data");
            if let Some(pid) = pid_file_pid(&data) {
                kill_postmaster_tree(pid, &data);
            }
            let _ = fs::remove_dir_all(&root);
            if now().duration_since(started) > Duration::from_secs(60) {
                break; // do not stall a test run on a huge backlog
            }
        }
    });
}
