//! `with_sync --once` against a lying server ([`testkit::liar`]): every lie must end the round
//! with a non-zero status, a clear sentence, and nothing installed; the costly listings must
//! also cost it at most three times the bytes they sent.

use std::path::Path;
use std::time::Duration;

use testkit::liar::{check_memory, Lie};
use testkit::{run_shell_env, ShellRun};

fn pull(_lie: Lie, peer: &str, dir: &Path) -> ShellRun {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    // One round, pulling from the liar; nothing on stdin. It reports its peak memory.
    run_shell_env(
        env!("CARGO_BIN_EXE_with_sync"),
        &["--dir", dir, "--peer", peer, "--once"],
        "",
        Duration::from_secs(90),
        &[("RUST_LOG", "with_sync::memory=info")],
    )
}

// `None`: any non-zero exit status is a failure status for `--once`.
testkit::liar_tests!(pull, None);

/// Gives the box an agreement with the liar on the file it holds, so that a round tells the
/// liar the digest of the box's top folder (`known`), which it then repeats.
fn agreed_with_the_liar(boxdir: &Path) {
    let md5 = testkit::md5_of(testkit::liar::OLD_CONTENT);
    let state = format!(
        r#"{{"format":2,"peer":"liar","agreed":{{"a.txt":[["file","{md5}",{},420,1],1]}}}}"#,
        testkit::liar::OLD_CONTENT.len()
    );
    let dir = boxdir.join(".minibox").join("state");
    std::fs::create_dir_all(&dir).expect("the state folder");
    std::fs::write(dir.join("liar.json"), state).expect("the state file");
}

#[test]
fn a_listing_of_long_names_costs_less_than_three_times_its_bytes() {
    let (peak, sent) = check_memory(&pull, Lie::LongNames, &|_| {});
    eprintln!(
        "long names: {} MiB sent, peak {} MiB",
        sent >> 20,
        peak >> 20
    );
}

#[test]
fn a_million_repeated_same_frames_are_refused_at_the_first_repeat() {
    let (peak, sent) = check_memory(&pull, Lie::RepeatedSame, &agreed_with_the_liar);
    eprintln!(
        "repeated same: {} KiB sent, peak {} MiB",
        sent >> 10,
        peak >> 20
    );
}

/// A file that changed on the peer between its listing and its download: its header is refused
/// without reading its bytes, the connection with it, and a new connection fetches the rest.
#[test]
fn a_header_that_contradicts_the_listing_is_refused_and_the_round_goes_on() {
    use testkit::liar::{honest_bytes, Liar, Scene, FILE, OLD_CONTENT, OTHER_FILE};
    let scene = Scene::new();
    let liar = Liar::start(Lie::OneChanged, &scene.root);
    let run = pull(Lie::OneChanged, &liar.addr(), &scene.boxdir);
    drop(liar);
    assert_ne!(run.code(), 0, "one download failed: {run:?}");
    assert!(run.stdout.contains("1 action(s) failed"), "{run:?}");
    let log = std::fs::read_to_string(scene.boxdir.join(".minibox/log")).unwrap_or_default();
    assert!(log.contains("the listing said"), "{log}");
    let read = |name| std::fs::read(scene.boxdir.join(name)).expect("a file of the box");
    assert_eq!(
        read(FILE),
        OLD_CONTENT,
        "the contradicted file is left alone"
    );
    assert_eq!(
        read(OTHER_FILE),
        honest_bytes(),
        "the rest came on a new connection"
    );
}
