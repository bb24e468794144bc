//! The stage-2 chapter (`with_thread/README.md`) runs as printed: every session it shows is run
//! against real boxes made by the start scripts, and what it prints is compared with the chapter
//! (see `testkit::transcript`). Between the sessions the test does what the chapter asks of the
//! reader in the other terminal: box 2 serves first; then box 1 instead; then box 2 again.

use std::path::Path;

use testkit::chapter::World;

#[test]
fn the_stage_2_chapter_runs_as_printed() {
    let bin = env!("CARGO_BIN_EXE_with_thread");
    let mut world = World::new(
        "with_thread/README.md",
        Path::new(bin).parent().expect("a folder"),
    );
    assert_eq!(
        world.blocks.len(),
        5,
        "a session was added or removed: update this test"
    );
    // The boxes exist already, as they do for a reader who ran stage 1.
    for n in [1, 2] {
        let make = format!("source scripts/lib/boxes.sh; sample_box {n} >/dev/null 2>&1");
        testkit::transcript::bash(
            &world.root,
            &world.env,
            &make,
            0,
            std::time::Duration::from_secs(60),
        );
    }
    // Box 2 serves in its terminal while box 1's shell asks it.
    let box2 = world.start("scripts/with_thread/start_box2.sh");
    world.run_block(0, "false");
    // "Leave it there, start box 1 in that terminal instead".
    drop(box2);
    let box1 = world.start("scripts/with_thread/start_box1.sh");
    world.run_block(1, "false");
    world.run_block(2, "false");
    // "Quit box 1 and start box 2 in that terminal".
    drop(box1);
    let box2 = world.start("scripts/with_thread/start_box2.sh");
    world.run_block(3, "false");
    world.run_block(4, "false");
    drop(box2);
    world.finish();
}
