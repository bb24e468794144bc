//! The stage-1 chapter (`before_thread/README.md`) and the UDP chapter (`docs/udp.md`) run as
//! printed: every session they show is run against real boxes made by the start scripts, and
//! what it prints is compared with the chapter (see `testkit::transcript`). `>> ` lines are
//! typed into `scripts/before_thread/start_client.sh` (box 2), asking the server the chapter
//! starts with `start_server.sh` (box 1); `$ ` lines run in bash in the reader's folder.

use std::path::Path;

use testkit::chapter::World;

/// A reader's folder with box 1 served and box 2 made.
fn stage_1(chapter: &str) -> (World, testkit::Proc) {
    let client = env!("CARGO_BIN_EXE_client");
    let world = World::new(chapter, Path::new(client).parent().expect("a folder"));
    let server = world.start("scripts/before_thread/start_server.sh");
    // The client's first run makes box 2 (and says so, which the chapter does not show).
    let made = testkit::transcript::bash(
        &world.root,
        &world.env,
        "scripts/before_thread/start_client.sh </dev/null",
        0,
        std::time::Duration::from_secs(60),
    );
    assert_eq!(made.1, 0, "{}", made.0);
    (world, server)
}

#[test]
fn the_stage_1_chapter_runs_as_printed() {
    let (mut world, server) = stage_1("before_thread/README.md");
    assert_eq!(
        world.blocks.len(),
        11,
        "a session was added or removed: update this test"
    );
    for i in 0..world.blocks.len() {
        world.run_block(i, "scripts/before_thread/start_client.sh");
    }
    drop(server);
    world.finish();
}

#[test]
fn the_udp_chapter_runs_as_printed() {
    let (mut world, server) = stage_1("docs/udp.md");
    assert_eq!(
        world.blocks.len(),
        1,
        "a session was added or removed: update this test"
    );
    world.run_block(0, "scripts/before_thread/start_client.sh");
    drop(server);
    world.finish();
}
