//! `pgwalrus receive` on a real file system that refuses it: read-only (a tmpfs remounted
//! `ro`), permission denied on the archive directory and on one file (pgwalrus run as the
//! server's OS user, since root is never denied), and a `.partial` replaced under its feet
//! while it runs. Each: exit 5 with a message naming the file and the operation, nothing
//! already archived changed, `pgwalrus verify` clean, and once the fault is cleared a new
//! `receive` resumes with no gap, every segment byte-identical to the server's `pg_wal`.
//! (EIO and ENOSPC at each step are in [`disk_faults_sim`](crate::disk_faults_sim).)

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use pgwalrus_testkit::{give_to_server_user, is_root};

use crate::receive_support::{Fixture, PATIENCE, listing, snapshot};
use crate::support::{Background, Home, SmallFs, pgwalrus};

/// Archives a complete segment and part of the next (left `.partial`), stops cleanly, and
/// returns the `.partial`'s name.
fn archive_some(f: &Fixture, receive: impl Fn() -> Background) -> String {
    f.archive_some(receive);
    newest_partial(f)
}

fn newest_partial(f: &Fixture) -> String {
    let segs = f.archive_segments();
    let newest = segs.last().expect("segments in the archive");
    assert!(newest.partial, "{segs:?}");
    newest.name.clone()
}

/// A new `receive` (started by `receive`) resumes: more WAL, a switch, everything
/// archived, a clean stop; then no gap, identical segments, and `verify` clean.
#[track_caller]
fn assert_resumes(f: &Fixture, receive: impl Fn() -> Background) {
    let mut r = receive();
    f.load(300);
    f.switch();
    let lsn = f.load(100);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    f.assert_complete_and_identical(2);
    assert_verifies(f);
}

#[track_caller]
fn assert_verifies(f: &Fixture) {
    let run = pgwalrus(
        &f.home,
        &["verify", f.archive.to_str().expect("utf-8")],
        &[],
    );
    assert_eq!(run.code, 0, "verify:\n{}\n{}", run.stdout, run.stderr);
}

/// `receive` into `f`'s archive as the server's OS user.
fn receive_as_server_user(f: &Fixture) -> Background {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let log = f.c.root_dir().join(format!(
        "receive-as-server-user-{}.log",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let archive = f.archive.display().to_string();
    Background::spawn_as_server_user(
        &f.home,
        &["receive", "-D", &archive, "-d", &f.conninfo],
        &log,
    )
}

/// A fixture whose archive (and home) belong to the server's OS user, for running
/// `receive` as that user.
fn server_user_fixture(owner_dir: &Home) -> Fixture {
    assert!(
        is_root(),
        "this test runs pgwalrus as another user, which needs root (CI and scripts/test.sh run as root)"
    );
    let mut f = Fixture::small();
    f.archive = owner_dir.path().join("archive");
    std::fs::create_dir_all(&f.archive).expect("archive directory");
    give_to_server_user(owner_dir.path());
    give_to_server_user(f.home.path());
    f
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

#[test]
fn a_read_only_archive_file_system_stops_receive_with_exit_5_and_a_restart_resumes() {
    assert!(
        is_root(),
        "this test mounts a tmpfs, which needs root (CI and scripts/test.sh run as root)"
    );
    let mut f = Fixture::small();
    let mount = SmallFs::mount(&f.c.root_dir().join("tmpfs-archive"), "64m");
    f.archive = mount.path().to_owned();
    let partial = archive_some(&f, || f.receive(&[]));
    let before = snapshot(&f.archive);

    mount.remount("ro");
    f.load(200);
    let mut r = f.receive(&[]);
    r.expect_exit(5, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains(&format!(
            "could not open {}",
            f.archive.join(&partial).display()
        )) && err.contains("Read-only file system"),
        "the message names the file, the operation and the cause:\n{err}"
    );
    assert_eq!(
        snapshot(&f.archive),
        before,
        "nothing changed: {}",
        listing(&before)
    );
    assert_verifies(&f);

    mount.remount("rw");
    assert_resumes(&f, || f.receive(&[]));
}

#[test]
fn permission_denied_on_the_archive_directory_stops_receive_with_exit_5_and_a_restart_resumes() {
    let owner = Home::new();
    let f = server_user_fixture(&owner);
    let partial = archive_some(&f, || receive_as_server_user(&f));
    let complete = partial.trim_end_matches(".partial").to_owned();

    // The directory can be read but not changed: the `.partial` is written again, but
    // completing it (a rename) is refused.
    chmod(&f.archive, 0o500);
    let mut r = receive_as_server_user(&f);
    f.load(200);
    f.switch();
    r.expect_exit(5, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains(&format!(
            "could not rename {}",
            f.archive.join(&partial).display()
        )) && err.contains("Permission denied"),
        "the message names the file, the operation and the cause:\n{err}"
    );
    let names = crate::receive_support::snapshot_names(&f.archive);
    assert!(
        names.contains(&partial) && !names.contains(&complete),
        "{names:?}"
    );
    chmod(&f.archive, 0o700);
    assert_verifies(&f);
    assert_resumes(&f, || receive_as_server_user(&f));
}

#[test]
fn permission_denied_on_the_partial_stops_receive_with_exit_5_and_a_restart_resumes() {
    let owner = Home::new();
    let f = server_user_fixture(&owner);
    let partial = archive_some(&f, || receive_as_server_user(&f));
    let before = snapshot(&f.archive);

    chmod(&f.archive.join(&partial), 0o400);
    f.load(200);
    let mut r = receive_as_server_user(&f);
    r.expect_exit(5, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains(&format!(
            "could not open {}",
            f.archive.join(&partial).display()
        )) && err.contains("Permission denied"),
        "the message names the file, the operation and the cause:\n{err}"
    );
    assert_eq!(snapshot(&f.archive), before, "nothing changed");
    chmod(&f.archive.join(&partial), 0o600);
    assert_verifies(&f);
    assert_resumes(&f, || receive_as_server_user(&f));
}

#[test]
fn a_partial_replaced_while_receive_runs_stops_it_with_exit_5_and_nothing_is_written_into_the_other_file()
 {
    let f = Fixture::small();
    let mut r = f.receive(&[]);
    f.load(200);
    f.switch();
    let lsn = f.load(200);
    f.wait_archived(lsn, &r);
    let partial = newest_partial(&f);
    let path = f.archive.join(&partial);
    // Another process moves the open file aside and puts a copy in its place.
    let aside = f.archive.join("moved-aside");
    #[allow(
        clippy::disallowed_methods,
        reason = "the test moves the file as another process would"
    )]
    std::fs::rename(&path, &aside).expect("move the .partial aside");
    std::fs::copy(&aside, &path).expect("copy it back");
    let copy = std::fs::read(&path).expect("read the copy");

    // More WAL: the next fsync finds the name taken by another file.
    f.load(200);
    r.expect_exit(5, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains(&format!(
            "segment file {} is no longer the file being written",
            path.display()
        )),
        "the message names the file:\n{err}"
    );
    assert_eq!(
        std::fs::read(&path).expect("the copy"),
        copy,
        "the other file was written into"
    );
    assert!(
        !f.archive
            .join(partial.trim_end_matches(".partial"))
            .exists(),
        "the other file was completed"
    );

    // The operator removes what was moved aside: receive resumes from the `.partial`
    // under its name, streaming the segment again.
    std::fs::remove_file(&aside).expect("remove the moved file");
    assert_verifies(&f);
    assert_resumes(&f, || f.receive(&[]));
}
