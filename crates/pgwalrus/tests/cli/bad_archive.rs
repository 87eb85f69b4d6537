//! Bad archive contents, as a new user makes them: garbage under a valid segment name, a
//! segment of the wrong size, names differing only in case, a symlink, a `.partial` of
//! another cluster, a history file that does not parse or is empty. For each, `receive`,
//! `verify`, `dump` and `restore` are run on an archive `pgwalrus receive` made of a real
//! server's WAL, and each must name the file at fault (not the next, intact one), exit with
//! the documented status (docs/failure-modes.md, "Bad archive contents") and leave
//! everything already in the archive as it was.

use std::path::PathBuf;

use crate::receive_support::{Fixture, Lsn, PATIENCE, Rng, SegFile, listing, seed, snapshot};
use crate::support::{Run, pgwalrus};

/// Archives `f`'s WAL with `pgwalrus receive`: at least `complete` complete segments, then
/// a `.partial`; stops cleanly and returns the position archived.
fn archive(f: &Fixture, complete: usize) -> Lsn {
    let mut r = f.receive(&[]);
    f.load(50);
    for _ in 0..complete {
        f.load(20);
        f.switch();
    }
    let lsn = f.load(100);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    lsn
}

fn complete_segments(f: &Fixture) -> Vec<SegFile> {
    f.archive_segments()
        .into_iter()
        .filter(|s| !s.partial)
        .collect()
}

fn partial(f: &Fixture) -> SegFile {
    f.archive_segments()
        .into_iter()
        .rfind(|s| s.partial)
        .expect("the archive ends with a .partial")
}

fn dir(f: &Fixture) -> String {
    f.archive.display().to_string()
}

/// Runs `what` and asserts that the archive is byte for byte what it was before.
#[track_caller]
fn unchanged<T>(f: &Fixture, what: impl FnOnce() -> T) -> T {
    let before = snapshot(&f.archive);
    let out = what();
    let after = snapshot(&f.archive);
    assert!(
        before == after,
        "the archive changed:\nbefore: {}\nafter:  {}",
        listing(&before),
        listing(&after)
    );
    out
}

fn verify(f: &Fixture) -> Run {
    unchanged(f, || pgwalrus(&f.home, &["verify", &dir(f)], &[]))
}

fn dump(f: &Fixture) -> Run {
    unchanged(f, || pgwalrus(&f.home, &["dump", &dir(f)], &[]))
}

/// `restore NAME PATH -D ARCHIVE [--partial]`, into a fresh path outside the archive.
fn restore(f: &Fixture, name: &str, partial: bool) -> (Run, PathBuf) {
    let target = f.c.root_dir().join(format!("restored-{name}"));
    let _ = std::fs::remove_file(&target);
    let target_text = target.display().to_string();
    let archive = dir(f);
    let mut args = vec!["restore", name, &target_text, "-D", &archive];
    if partial {
        args.push("--partial");
    }
    let run = unchanged(f, || pgwalrus(&f.home, &args, &[]));
    (run, target)
}

/// `receive` until `endpos`; returns its exit code and stderr.
fn receive_until(f: &Fixture, endpos: Lsn) -> (i32, String) {
    let mut r = f.receive(&["-E", &endpos.to_string()]);
    let code = r.wait(PATIENCE);
    (code, r.stderr())
}

/// `receive` that must refuse with `code`, naming `file`, and change nothing.
#[track_caller]
fn receive_refuses(f: &Fixture, code: i32, file: &str) -> String {
    let endpos = f.load(20);
    let (got, err) = unchanged(f, || receive_until(f, endpos));
    assert_eq!(got, code, "receive exited {got}, expected {code}:\n{err}");
    assert!(err.contains(file), "receive names {file}:\n{err}");
    err
}

/// `receive` that goes on streaming, leaving every complete segment as it was (and
/// `keep`, whatever it is, in place).
#[track_caller]
fn receive_goes_on(f: &Fixture, keep: &[&str]) {
    let before = snapshot(&f.archive);
    let endpos = f.load(20);
    let (code, err) = receive_until(f, endpos);
    assert_eq!(code, 0, "receive should stream on:\n{err}");
    let after = snapshot(&f.archive);
    for (name, content) in &before {
        let complete = !name.ends_with(".partial");
        if complete || keep.contains(&name.as_str()) {
            assert!(
                after.get(name) == Some(content),
                "receive changed {name}:\n{err}"
            );
        }
    }
}

/// The `problem:` lines of a `verify` run.
fn problems(run: &Run) -> Vec<&str> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with("problem: "))
        .collect()
}

#[track_caller]
fn assert_verify_names_only(run: &Run, file: &str, words: &str) {
    run.expect_code(1);
    let lines = problems(run);
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|l| l.starts_with(&format!("problem: {file}"))),
        "every problem is reported in {file}, and only there:\n{}",
        run.stdout
    );
    assert!(
        lines.iter().any(|l| l.contains(words)),
        "verify says \"{words}\":\n{}",
        run.stdout
    );
}

fn random_bytes(len: usize, rng: &mut Rng) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn path(f: &Fixture, name: &str) -> PathBuf {
    f.archive.join(name)
}

#[test]
fn garbage_under_a_complete_segments_name_is_named_by_every_command() {
    let f = Fixture::small();
    archive(&f, 3);
    let segs = complete_segments(&f);
    assert!(segs.len() >= 3, "{segs:?}");
    let (damaged, next) = (&segs[1].name, &segs[2].name);
    let mut rng = Rng::new(seed(15));
    let size = usize::try_from(f.seg_size).unwrap();
    std::fs::write(path(&f, damaged), random_bytes(size, &mut rng)).unwrap();

    let run = verify(&f);
    assert_verify_names_only(&run, damaged, "");
    assert!(!run.stdout.contains(next.as_str()), "{}", run.stdout);
    let run = dump(&f);
    run.expect_code(1);
    assert!(run.stderr.contains(damaged.as_str()), "{}", run.stderr);
    let (run, _) = restore(&f, damaged, false);
    run.expect_code(255);
    assert!(
        run.stderr
            .contains(&format!("{damaged} in the archive is damaged")),
        "{}",
        run.stderr
    );
    // receive reads the ends of the archive, not what lies between: it streams on, and
    // leaves the damaged file for verify to report.
    receive_goes_on(&f, &[]);
}

#[test]
fn garbage_under_the_newest_partials_name_is_refused_by_every_command() {
    let f = Fixture::small();
    archive(&f, 1);
    let partial = partial(&f);
    let mut rng = Rng::new(seed(16));
    let size = usize::try_from(f.seg_size).unwrap();
    std::fs::write(path(&f, &partial.name), random_bytes(size, &mut rng)).unwrap();

    let run = verify(&f);
    assert_verify_names_only(&run, &partial.name, "first page of this .partial");
    let run = dump(&f);
    run.expect_code(1);
    assert!(run.stderr.contains(&partial.name), "{}", run.stderr);
    let plain = partial.name.trim_end_matches(".partial");
    let (run, _) = restore(&f, plain, true);
    run.expect_code(255);
    assert!(run.stderr.contains("is damaged"), "{}", run.stderr);
    // Resuming into it would leave the random bytes behind the WAL streamed again.
    receive_refuses(&f, 3, &partial.name);
}

#[test]
fn a_segment_of_the_wrong_size_is_named_not_the_next_one() {
    let f = Fixture::small();
    archive(&f, 3);
    let segs = complete_segments(&f);
    let (damaged, next) = (&segs[1].name, &segs[2].name);
    let original = std::fs::read(path(&f, damaged)).unwrap();
    let seg = original.len();
    for (len, words) in [
        (0, "it is empty"),
        (seg / 2, "it was cut short"),
        (seg + 8192, "it is longer than a segment"),
    ] {
        let mut content = original.clone();
        content.resize(len, 0);
        std::fs::write(path(&f, damaged), &content).unwrap();

        let run = verify(&f);
        assert_verify_names_only(&run, damaged, &format!("it has {len} bytes"));
        assert!(run.stdout.contains(words), "{}", run.stdout);
        assert!(!run.stdout.contains(next.as_str()), "{}", run.stdout);
        let run = dump(&f);
        run.expect_code(1);
        assert!(run.stderr.contains(damaged.as_str()), "{}", run.stderr);
        assert!(!run.stderr.contains(next.as_str()), "{}", run.stderr);
        let (run, _) = restore(&f, damaged, false);
        run.expect_code(255);
        assert!(
            run.stderr.contains(&format!("it has {len} bytes")),
            "{}",
            run.stderr
        );
        receive_refuses(&f, 3, damaged);
    }
    std::fs::write(path(&f, damaged), &original).unwrap();
    verify(&f).expect_code(0);
}

#[test]
fn a_name_in_lower_case_is_not_a_wal_file_name() {
    let f = Fixture::small();
    // Enough segments for a name with a hex letter (1 MiB segments).
    archive(&f, 11);
    let segs = complete_segments(&f);
    let upper = segs
        .iter()
        .map(|s| s.name.clone())
        .find(|n| n.bytes().any(|b| b.is_ascii_uppercase()))
        .unwrap_or_else(|| panic!("no segment name with a letter: {segs:?}"));
    let lower = upper.to_ascii_lowercase();
    let mut rng = Rng::new(seed(17));
    let size = usize::try_from(f.seg_size).unwrap();
    // A file that differs only in case, and holds something else.
    std::fs::write(path(&f, &lower), random_bytes(size, &mut rng)).unwrap();

    let run = verify(&f);
    assert_verify_names_only(
        &run,
        &lower,
        &format!("it spells {upper} in lower-case hex"),
    );
    assert_eq!(problems(&run).len(), 1, "{}", run.stdout);
    // dump reads the WAL, which the file is no part of.
    dump(&f).expect_code(0);
    let (run, target) = restore(&f, &upper, false);
    run.expect_code(0);
    assert!(
        std::fs::read(&target).unwrap() == std::fs::read(path(&f, &upper)).unwrap(),
        "restore served the upper-case file"
    );
    let (run, _) = restore(&f, &lower, false);
    run.expect_code(255);
    assert!(
        run.stderr.contains("hex digits must be upper-case"),
        "{}",
        run.stderr
    );
    receive_goes_on(&f, &[&lower]);
}

#[test]
fn a_symlinked_segment_is_read_through_and_a_dangling_one_is_named() {
    let f = Fixture::small();
    archive(&f, 3);
    let segs = complete_segments(&f);
    let linked = segs[1].name.clone();
    let elsewhere = f.c.root_dir().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let target = elsewhere.join(&linked);
    // Moved by copy and removal (renames are the durable module's, even in tests).
    std::fs::copy(path(&f, &linked), &target).unwrap();
    std::fs::remove_file(path(&f, &linked)).unwrap();
    std::os::unix::fs::symlink(&target, path(&f, &linked)).unwrap();

    // Followed, as PostgreSQL and pg_receivewal follow them: the file is the link's target.
    verify(&f).expect_code(0);
    dump(&f).expect_code(0);
    let (run, restored) = restore(&f, &linked, false);
    run.expect_code(0);
    assert!(std::fs::read(&restored).unwrap() == std::fs::read(&target).unwrap());
    receive_goes_on(&f, &[]);
    assert!(
        std::fs::symlink_metadata(path(&f, &linked))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is left as it was"
    );

    // A link to nothing is a file that cannot be read, named by every command.
    std::fs::remove_file(&target).unwrap();
    let run = verify(&f);
    assert_verify_names_only(&run, &linked, "");
    let run = dump(&f);
    run.expect_code(1);
    assert!(run.stderr.contains(&linked), "{}", run.stderr);
    let (run, _) = restore(&f, &linked, false);
    run.expect_code(255);
    assert!(run.stderr.contains(&linked), "{}", run.stderr);
    receive_refuses(&f, 5, &linked);
}

#[test]
fn a_partial_of_another_cluster_is_refused_by_every_command() {
    let f = Fixture::small();
    archive(&f, 1);
    let partial = partial(&f);
    let mut content = std::fs::read(path(&f, &partial.name)).unwrap();
    // xlp_sysid, at byte 24 of the long header: the same WAL, of another database system.
    let ours = u64::from_le_bytes(content[24..32].try_into().unwrap());
    assert_eq!(ours, f.c.system_identifier());
    let other = ours ^ 0x5a5a;
    content[24..32].copy_from_slice(&other.to_le_bytes());
    std::fs::write(path(&f, &partial.name), &content).unwrap();

    let run = verify(&f);
    assert_verify_names_only(&run, &partial.name, &other.to_string());
    let run = dump(&f);
    run.expect_code(1);
    assert!(run.stderr.contains(&partial.name), "{}", run.stderr);
    let plain = partial.name.trim_end_matches(".partial");
    let (run, _) = restore(&f, plain, true);
    run.expect_code(255);
    assert!(
        run.stderr.contains("another cluster") && run.stderr.contains(&other.to_string()),
        "{}",
        run.stderr
    );
    let err = receive_refuses(&f, 3, &partial.name);
    assert!(
        err.contains(&other.to_string()) && err.contains(&ours.to_string()),
        "{err}"
    );
}

#[test]
fn a_history_file_that_does_not_parse_or_is_empty_is_named_by_every_command() {
    let f = Fixture::small();
    archive(&f, 3);
    let segs = complete_segments(&f);
    // A damaged segment elsewhere must still be found.
    let damaged = segs[1].name.clone();
    let original = std::fs::read(path(&f, &damaged)).unwrap();
    let mut content = original.clone();
    content[..40].fill(0xEE);
    std::fs::write(path(&f, &damaged), &content).unwrap();
    let history = "00000002.history";
    for (content, words) in [
        (&b""[..], "has no entries"),
        (b"\n# nothing\n", "has no entries"),
        (b"this is not a history file\n", "history line 1"),
    ] {
        std::fs::write(path(&f, history), content).unwrap();
        let run = verify(&f);
        run.expect_code(1);
        let lines = problems(&run);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("problem: {history}")) && l.contains(words)),
            "verify names {history}:\n{}",
            run.stdout
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("problem: {damaged}"))),
            "verify still walks timeline 1 and names {damaged}:\n{}",
            run.stdout
        );
        assert!(run.stdout.contains("on timeline 1"), "{}", run.stdout);
        let run = dump(&f);
        run.expect_code(1);
        assert!(run.stderr.contains(history), "{}", run.stderr);
        let (run, target) = restore(&f, history, false);
        run.expect_code(255);
        assert!(
            run.stderr
                .contains(&format!("{history} in the archive is damaged"))
                && run.stderr.contains(words),
            "{}",
            run.stderr
        );
        assert!(!target.exists(), "nothing was served");
        receive_refuses(&f, 3, history);
    }
}
