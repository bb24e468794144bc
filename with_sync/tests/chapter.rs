//! The stage-3 chapter (`with_sync/README.md`) runs as printed: every session of its "Try it"
//! is run against two real boxes started by the start scripts, and what it prints is compared
//! with the chapter (see `testkit::transcript`). The boxes sync every 0.3 s rather than 5 (the
//! chapter's `sleep 6` then leaves room to spare); `>> ` lines, typed at box 2's prompt in the
//! chapter, go to a stage-1 `client` on box 2 here: they are the shell's local commands, the same
//! in every stage, and a `with_sync` reads commands only from a terminal. Between sessions the
//! test does what the chapter asks of the reader: leave box 1, start it again.

use std::path::Path;
use std::time::Duration;

use testkit::chapter::World;

const SHELL: &str = "target/release/client --dir boxes/2 --peer 127.0.0.1:60001";

#[test]
fn the_stage_3_chapter_runs_as_printed() {
    let bin = env!("CARGO_BIN_EXE_with_sync");
    testkit::sibling_bin("before_thread", "client");
    let mut world = World::new(
        "with_sync/README.md",
        Path::new(bin).parent().expect("a folder"),
    );
    assert_eq!(
        world.blocks.len(),
        5,
        "a session was added or removed: update this test"
    );
    let start =
        |w: &World, n: u8| w.start(&format!("scripts/with_sync/start_box{n}.sh --interval 0.3"));
    let mut box1 = start(&world, 1);
    let box2 = start(&world, 2);
    let (one, two) = (world.root.join("boxes/1"), world.root.join("boxes/2"));
    let settled = || testkit::snapshot_live(&one) == testkit::snapshot_live(&two);
    assert!(
        testkit::wait_until(Duration::from_secs(60), settled),
        "the boxes did not converge"
    );
    world.run_block(0, SHELL);
    world.run_block(1, SHELL);
    // "Leave box 1".
    drop(box1);
    world.run_block(2, SHELL);
    // "And start box 1 again".
    box1 = start(&world, 1);
    world.run_block(3, SHELL);
    world.run_block(4, SHELL);
    drop((box1, box2));
    world.finish();
}
