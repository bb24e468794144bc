//! `scripts/demo.sh`, the README's first command, run as a user runs it, but with this test's
//! debug build (`MINIBOX_BIN_DIR`, so that it builds nothing) and in a temporary folder of its
//! own. The demo checks what the boxes converged to (one conflict copy on each side, the
//! replaced and deleted bytes in the trash) and exits non-zero if anything is off; the test
//! demands exit 0, the checks' lines, and that the demo cleaned up after itself.

// Test helpers: a failed file operation here is a failed test, so unwrap is the right answer.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo needs about ten seconds; a loaded machine may need several times that.
const DEMO_LIMIT: Duration = Duration::from_secs(240);

/// The demo's process group (the script and the peers it starts), killed on drop if the demo
/// is still running then: a test that fails leaves nothing behind.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .status();
            let _ = self.0.wait();
        }
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = r.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

#[test]
fn the_demo_makes_a_conflict_converges_and_checks_what_it_converged_to() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_with_sync")).parent().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo.sh");
    let tmp = testkit::tempdir();
    let mut child = Command::new("bash")
        .arg(&script)
        .env("MINIBOX_BIN_DIR", bin_dir)
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout can stop the peers it started as well.
        .process_group(0)
        .spawn()
        .expect("bash runs scripts/demo.sh");
    let (out, err) = (
        drain(child.stdout.take().unwrap()),
        drain(child.stderr.take().unwrap()),
    );
    let mut demo = Demo(child);
    let deadline = Instant::now() + DEMO_LIMIT;
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(demo); // kills the group if it is still running, so the pipes close
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let status = status.unwrap_or_else(|| {
        panic!("the demo did not finish within {DEMO_LIMIT:?}:\n{out}\nstderr:\n{err}")
    });
    assert!(status.success(), "{status:?}\n{out}\nstderr:\n{err}");
    for line in [
        "ok: box1: exactly one conflict copy of plan.txt",
        "ok: box2: exactly one conflict copy of plan.txt",
        "ok: box2: plan.txt holds box2's newer edit",
        "ok: box1's trash has the report as it was before box2's edit",
        "ok: box2's trash has todo.txt, deleted on box1",
        "Both stopped cleanly (exit status 0).",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}\nstderr:\n{err}");
    }
    assert!(
        !out.contains("FAILED") && !err.contains("FAILED"),
        "{out}\n{err}"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the demo left its temporary folder behind"
    );
}
