//! The liar's costly listings: legal on their face, told to find out what they cost the box that
//! receives them. The receiver reports its own peak memory (`with_sync --once` logs it with
//! `RUST_LOG=with_sync::memory=info`), and [`check_memory`] holds it to [`TIMES`] the bytes
//! the liar sent, above a round's fixed cost ([`BASE`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use minibox::protocol::limits::ENTRIES_PER_CHUNK;
use minibox::protocol::{Entry, FolderSum, Reply};
use minibox::wire::conn::Connection;

use super::{entry, Liar, Lie, Pull, Scene, HOLD, MILLION};

/// How many files [`Lie::LongNames`] lists.
pub const LONG_NAMES: usize = 40_000;

/// Folders above every file of [`Lie::LongNames`], each a name of 250 bytes (a file system
/// takes up to 255): a path of about 3,800 bytes (at most 4,096).
const DEPTH: usize = 14;

/// What a receiver may hold at most for every byte of listing it was sent.
pub const TIMES: u64 = 3;

/// A round's own cost, whatever it is sent: its threads, buffers (a 4 MiB frame), the code.
pub const BASE: u64 = 32 << 20;

/// Answers a sync listing with a costly lie, counting the bytes of its frames in `sent`.
pub(super) fn costly_listing(
    conn: &mut Connection,
    lie: Lie,
    known: &[FolderSum],
    sent: &AtomicU64,
) -> minibox::Result<()> {
    let mut send = |reply: &Reply| -> minibox::Result<()> {
        let len = serde_json::to_vec(reply).map_or(0, |body| body.len() as u64 + 5);
        conn.queue(reply)?;
        sent.fetch_add(len, Ordering::SeqCst);
        Ok(())
    };
    match (lie, known.first()) {
        (Lie::RepeatedSame, Some(first)) => {
            let folders = vec![first.folder.clone(); ENTRIES_PER_CHUNK];
            let until = Instant::now() + HOLD;
            // Until the victim hangs up (a send fails), or long enough.
            for _ in 0..MILLION {
                if Instant::now() > until {
                    break;
                }
                send(&Reply::Same {
                    folders: folders.clone(),
                })?;
            }
        }
        _ => {
            let entries = long_names();
            for chunk in entries.chunks(ENTRIES_PER_CHUNK) {
                send(&Reply::Entries {
                    entries: chunk.to_vec(),
                })?;
            }
            send(&Reply::End {
                count: entries.len() as u64,
            })?;
        }
    }
    conn.flush()
}

/// The files of [`Lie::LongNames`], in path order. (The folders above them are not listed: a
/// round makes none, and its box stays as it was.)
fn long_names() -> Vec<Entry> {
    let chain: Vec<String> = (0..DEPTH)
        .map(|level| format!("d{level:02}{}", "x".repeat(247)))
        .collect();
    let chain = chain.join("/");
    let mut out = Vec::with_capacity(LONG_NAMES);
    let md5 = crate::md5_of(b"1");
    for i in 0..LONG_NAMES {
        let name = format!("{chain}/f{i:05}{}", "y".repeat(244));
        out.push(Entry {
            size: 1,
            ..entry(&name, Some(md5.clone()))
        });
    }
    out
}

/// Puts a victim against a liar telling a costly lie (after `prepare` had its say on the box,
/// e.g. to give it an agreement with the liar so that it asks about folders), and checks that it
/// installed nothing and held at most [`TIMES`] the bytes sent, above [`BASE`]. The victim's
/// stderr must carry its peak memory (`peak memory N KiB`). Returns (peak, bytes sent).
///
/// # Panics
/// On the first thing the victim got wrong.
pub fn check_memory(pull: Pull<'_>, lie: Lie, prepare: &dyn Fn(&std::path::Path)) -> (u64, u64) {
    let scene = Scene::new();
    prepare(&scene.boxdir);
    let liar = Liar::start(lie, &scene.root);
    let run = pull(lie, &liar.addr(), &scene.boxdir);
    let sent = liar.bytes_sent();
    drop(liar);
    assert_ne!(run.code(), 0, "{lie:?}: the round did not fail: {run:?}");
    scene.assert_refused(lie, &run);
    let peak = run
        .stderr
        .lines()
        .find_map(|l| l.split("peak memory ").nth(1))
        .and_then(|rest| rest.trim_end_matches(" KiB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("{lie:?}: no peak memory reported: {}", run.stderr));
    assert!(
        peak <= BASE + TIMES * sent,
        "{lie:?}: a peak of {} MiB for {} MiB sent (at most {TIMES} times that, above {} MiB)",
        peak >> 20,
        sent >> 20,
        BASE >> 20
    );
    (peak, sent)
}
