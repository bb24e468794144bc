//! The stage-1 `client` against a lying server ([`testkit::liar`]): names that leave the box, a
//! size or MD5 that does not match the bytes, a million-entry listing, transfers that stall or
//! trickle, and over UDP blocks or a trailer that do not match the MD5. Each must end with a
//! clear error, exit status 1, and nothing installed.

use std::path::Path;
use std::time::Duration;

use testkit::liar::Lie;
use testkit::{run_shell, ShellRun};

fn pull(lie: Lie, peer: &str, dir: &Path) -> ShellRun {
    let dir = dir.to_str().expect("a UTF-8 temp path");
    run_shell(
        env!("CARGO_BIN_EXE_client"),
        &["--dir", dir, "--peer", peer, "--json"],
        lie.shell_input(),
        Duration::from_secs(90),
    )
}

testkit::liar_tests!(pull, Some(1));

/// The UDP lies: the liar offers a UDP download and sends every block, but the bytes or the
/// trailer do not match the MD5. The client must say so in one sentence and install nothing.
fn refuses_in_one_sentence(lie: Lie) {
    let run = testkit::liar::check(&pull, lie, Some(1));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{lie:?}: one answer: {}", run.stdout);
    let answer: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(answer["ok"], false, "{answer}");
    let error = answer["error"].as_str().expect("an error sentence");
    assert!(
        error.starts_with("a.txt did not verify") && error.ends_with("nothing was installed"),
        "{lie:?}: {error}"
    );
}

#[test]
fn udp_blocks_that_do_not_match_the_announced_md5() {
    refuses_in_one_sentence(Lie::UdpBlocks);
}

#[test]
fn udp_trailer_with_the_wrong_md5() {
    refuses_in_one_sentence(Lie::UdpTrailer);
}

/// A new block every 3 s is not a transfer: the pace that protects TCP holds for UDP too.
#[test]
fn udp_drip_below_the_pace() {
    let run = testkit::liar::check(&pull, Lie::UdpDrip, Some(1));
    let answer = &run.json_lines()[0];
    let error = answer["error"].as_str().expect("an error sentence");
    assert!(
        error.starts_with("download UDP of a.txt gave up: the peer moved fewer than 16 KiB"),
        "{error}"
    );
}
