//! Stage 1 of 3: `before_thread` — a blocking server and a separate interactive client.
//!
//! This stage's code is two small binaries (`src/bin/server.rs`, `src/bin/client.rs`); all the
//! machinery they share with the later stages lives in the `minibox` crate (`shared/`). Read the
//! chapter in `before_thread/README.md` first.
