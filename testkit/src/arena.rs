//! The battlefield for hostile-input tests: a box full of traps, a canary folder beside it, and the
//! checks that prove an attack changed nothing.
//!
//! An [`Arena`] is one temporary folder holding three siblings:
//!
//! ```text
//! arena/
//!   box/      the box under attack: ordinary files with awkward names, plus traps (symbolic
//!             links that point into canary/, a FIFO, a socket file, a name that is not UTF-8,
//!             a name with a backslash, a file and a folder with mode 000)
//!   canary/   files that must never be read or written by anyone serving box/; each contains
//!             the marker [`MARKER`], so a reply that carries them is caught
//!   client/   the box of the honest client that runs the checks
//! ```
//!
//! "Nothing outside the box was read": every reply an attack receives is searched for
//! [`MARKER`], and the symbolic links into `canary/` must be refused by name. (Access times are
//! not used: many file systems do not update them.) "Nothing outside the box was written": the
//! whole arena except `box/` and `client/` is snapshotted before the attacks (contents, modes,
//! mtimes, link targets, every name) and compared after each one; [`Arena::bytes_outside`]
//! counts what differs. The box itself (minus `.minibox/`) must not change either: serving is
//! read-only.
//!
//! About "unreadable" files: these tests often run as root, and root reads a mode-000 file
//! anyway. So the box holds, besides a mode-000 file and folder (unreadable for everyone else),
//! things no one can read as a file: a FIFO (opening it would block until a writer comes) and a
//! Unix socket file (opening it fails). [`Expected`] knows which case applies.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use minibox::local::LocalBox;
use minibox::protocol::{Filter, Kind, ListKind};
use minibox::wire::conn::Connection;

use crate::{md5_of, pseudo_random, write, TempDir};

/// A byte string that only canary files contain. Finding it in anything a server sent means the
/// server read outside its box.
pub const MARKER: &[u8] = b"CANARY-8c1f0e5a-outside-the-box";

/// Size of the large file of the box (for attacks that need a transfer to be under way).
pub const BIG: usize = 4 * 1024 * 1024;

/// What an honest client must see when it asks the box under attack.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Every file a listing with hashes must show, with its contents.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Files a plain listing shows but that cannot be read (mode 000 when not running as root).
    pub unreadable: BTreeSet<String>,
    /// Every folder a listing with folders must show.
    pub dirs: BTreeSet<String>,
    /// Names in the box that lead outside it (symbolic links): refused with `BadPath`.
    pub links: Vec<String>,
    /// Names in the box that are not regular files (FIFO, socket): refused with `NotFound`.
    pub specials: Vec<String>,
}

/// One node of a snapshotted tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file: contents (`None` if unreadable), mode, mtime.
    File(Option<Vec<u8>>, u32, i64),
    /// A folder and its mode.
    Dir(u32),
    /// A symbolic link and its target.
    Link(PathBuf),
    /// Anything else (FIFO, socket, device), with its mode word.
    Other(u32),
}

impl Node {
    /// How many bytes this node stands for when it appears or changes (at least 1).
    fn weight(&self) -> u64 {
        match self {
            Node::File(Some(bytes), ..) => (bytes.len() as u64).max(1),
            _ => 1,
        }
    }
}

/// A tree as relative path (lossy UTF-8) → node.
pub type Tree = BTreeMap<String, Node>;

/// Snapshots `root` recursively, leaving out the top-level names in `skip`. Never follows links,
/// never opens anything but regular files (a FIFO would block).
///
/// # Panics
/// If `root` cannot be read.
pub fn tree(root: &Path, skip: &[&str]) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            assert!(dir != root, "cannot read {}", root.display());
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            if dir == root && skip.iter().any(|s| OsStr::new(s) == entry.file_name()) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = meta.file_type();
            let node = if ft.is_symlink() {
                Node::Link(fs::read_link(&path).unwrap_or_default())
            } else if ft.is_dir() {
                stack.push(path.clone());
                Node::Dir(meta.mode() & 0o7777)
            } else if ft.is_file() {
                Node::File(
                    fs::read(&path).ok(),
                    meta.mode() & 0o7777,
                    meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                )
            } else {
                Node::Other(meta.mode())
            };
            out.insert(rel, node);
        }
    }
    out
}

/// Bytes by which `after` differs from `before`: new or changed nodes count their size, removed
/// ones count 1 each.
pub fn difference(before: &Tree, after: &Tree) -> (u64, Vec<String>) {
    let mut bytes = 0;
    let mut names = Vec::new();
    for (name, node) in after {
        if before.get(name) != Some(node) {
            bytes += node.weight();
            names.push(name.clone());
        }
    }
    for name in before.keys() {
        if !after.contains_key(name) {
            bytes += 1;
            names.push(format!("{name} (removed)"));
        }
    }
    (bytes, names)
}

/// Whether this process runs as root (root reads mode-000 files). Tells by the owner of a file it
/// creates, so no `unsafe` call to `geteuid` is needed.
pub fn running_as_root(scratch: &Path) -> bool {
    let probe = scratch.join(".uid-probe");
    fs::write(&probe, b"").expect("write probe");
    let uid = fs::metadata(&probe).expect("stat probe").uid();
    let _ = fs::remove_file(&probe);
    uid == 0
}

/// The box under attack, its canary sibling, the honest client's box, and snapshots to compare.
pub struct Arena {
    /// Keeps the folder alive.
    _tmp: TempDir,
    /// The arena folder.
    pub root: PathBuf,
    /// The box under attack.
    pub boxdir: PathBuf,
    /// The canary folder beside it.
    pub canary: PathBuf,
    /// The honest client's box.
    pub client: PathBuf,
    /// What the box serves.
    pub expected: Expected,
    /// The arena minus `box/` and `client/`, as it was at the start.
    outside_before: Tree,
    /// The box minus `.minibox/`, as it was at the start.
    box_before: Tree,
}

/// Top-level names of the arena that belong to boxes (everything else is "outside").
const BOXES: &[&str] = &["box", "client"];

impl Arena {
    /// Builds the box with every trap, and the canary.
    ///
    /// # Panics
    /// On I/O failure.
    pub fn new() -> Arena {
        let tmp = crate::tempdir();
        let root = fs::canonicalize(tmp.path()).expect("canonical temp dir");
        let boxdir = root.join("box");
        let canary = root.join("canary");
        let client = root.join("client");
        fs::create_dir_all(&boxdir).expect("mkdir box");
        fs::create_dir_all(&client).expect("mkdir client");
        let mut secret = b"top secret: ".to_vec();
        secret.extend_from_slice(MARKER);
        write(&canary, "secret.txt", &secret);
        write(&canary, "sub/deep.txt", &secret);
        write(&canary, "hello.txt", &secret);
        let expected = populate(&root, &boxdir, &canary);
        Arena {
            _tmp: tmp,
            outside_before: tree(&root, BOXES),
            box_before: tree(&boxdir, &[minibox::META_DIR]),
            root,
            boxdir,
            canary,
            client,
            expected,
        }
    }

    /// Bytes written (or removed) outside the two boxes since the start, and the names involved.
    pub fn bytes_outside(&self) -> (u64, Vec<String>) {
        difference(&self.outside_before, &tree(&self.root, BOXES))
    }

    /// What changed since the start where nothing may change: outside the two boxes, and in
    /// the box under attack (serving never writes outside `.minibox/`). `None` if nothing did.
    pub fn changes(&self) -> Option<String> {
        let (bytes, names) = self.bytes_outside();
        if bytes != 0 {
            return Some(format!("{bytes} bytes written outside the box: {names:?}"));
        }
        let (bytes, names) =
            difference(&self.box_before, &tree(&self.boxdir, &[minibox::META_DIR]));
        (bytes != 0).then(|| format!("the served box changed by {bytes} bytes: {names:?}"))
    }

    /// Asserts that [`Arena::changes`] finds nothing.
    ///
    /// # Panics
    /// With the names that changed.
    pub fn assert_untouched(&self, after: &str) {
        if let Some(what) = self.changes() {
            panic!("after {after}: {what}");
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

/// Fills the box: honest files with awkward names, and every trap. Returns what must be served.
fn populate(root: &Path, boxdir: &Path, canary: &Path) -> Expected {
    let mut ex = Expected::default();
    add_honest_files(boxdir, &mut ex);
    add_locked(root, boxdir, &mut ex);
    add_links(boxdir, canary, &mut ex);
    add_specials(boxdir, &mut ex);
    add_unaskable_names(boxdir);
    ex
}

/// Honest files and folders with awkward names, all of which must be served.
fn add_honest_files(boxdir: &Path, ex: &mut Expected) {
    let mut file = |name: &str, bytes: Vec<u8>| {
        write(boxdir, name, &bytes);
        ex.files.insert(name.to_string(), bytes);
    };
    file("hello.txt", b"hello, box\n".to_vec());
    file("empty", Vec::new());
    file("docs/readme.md", b"# read me\n".to_vec());
    file("deep/a/b/c/file.bin", pseudo_random(10_000, 1));
    file("big.bin", pseudo_random(BIG, 2));
    file("name with spaces.txt", b"spaces".to_vec());
    file("\u{fc}n\u{ef}c\u{f6}d\u{e9}.txt", b"unicode".to_vec());
    file("quote\"and'apostrophe.txt", b"quotes".to_vec());
    file("new\nline.txt", b"a newline in a name is legal".to_vec());
    file("..hidden", b"dots".to_vec());
    file("a..b", b"dots".to_vec());
    for dir in ["docs", "deep", "deep/a", "deep/a/b", "deep/a/b/c"] {
        ex.dirs.insert(dir.to_string());
    }
}

/// Mode 000: unreadable for anyone but root. Root reads them, so they are then ordinary.
fn add_locked(root: &Path, boxdir: &Path, ex: &mut Expected) {
    write(boxdir, "locked.txt", b"locked");
    write(boxdir, "locked-dir/inner.txt", b"inner");
    crate::chmod(&boxdir.join("locked.txt"), 0);
    crate::chmod(&boxdir.join("locked-dir"), 0);
    ex.dirs.insert("locked-dir".into());
    if running_as_root(root) {
        ex.files.insert("locked.txt".into(), b"locked".to_vec());
        ex.files
            .insert("locked-dir/inner.txt".into(), b"inner".to_vec());
    } else {
        ex.unreadable.insert("locked.txt".into());
    }
}

/// Symbolic links leading out of the box: to a file, to a folder, absolute and relative, and
/// one that points nowhere. None may be listed, hashed or served.
fn add_links(boxdir: &Path, canary: &Path, ex: &mut Expected) {
    let link = |target: &Path, name: &str| {
        let at = boxdir.join(name);
        std::os::unix::fs::symlink(target, at).expect("symlink");
    };
    link(&canary.join("secret.txt"), "link-to-secret");
    link(Path::new("../canary"), "link-to-canary");
    link(Path::new("../../canary/secret.txt"), "docs/up");
    link(Path::new("/nonexistent/minibox"), "dangling");
    ex.links = [
        "link-to-secret",
        "link-to-canary",
        "link-to-canary/secret.txt",
        "link-to-canary/sub/deep.txt",
        "docs/up",
        "dangling",
    ]
    .map(String::from)
    .to_vec();
}

/// Not files at all: a FIFO (a plain open would block) and a Unix socket (open fails).
fn add_specials(boxdir: &Path, ex: &mut Expected) {
    let fifo = boxdir.join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo failed");
    drop(std::os::unix::net::UnixListener::bind(boxdir.join("sock")).expect("unix socket"));
    ex.specials = vec!["pipe".into(), "sock".into()];
}

/// Names a peer could not ask for: not UTF-8, and with a backslash. Skipped by the scan.
fn add_unaskable_names(boxdir: &Path) {
    fs::write(
        boxdir.join(OsStr::from_bytes(b"not-utf8-\xff\xfe.txt")),
        b"bad name",
    )
    .expect("write non-UTF-8 name");
    fs::write(boxdir.join("back\\slash.txt"), b"backslash").expect("write");
}

/// Asks the box at `addr` everything an honest client asks and compares the answers with the
/// truth: listings (plain, with hashes, with folders), one `hash`, one TCP download verified byte
/// for byte. `connect` opens a connection (so a caller can add authentication).
///
/// # Panics
/// With a message naming the first wrong answer.
pub fn check_alive_and_correct(
    addr: SocketAddr,
    arena: &Arena,
    connect: &(dyn Fn(&str) -> minibox::Result<Connection> + Sync),
) {
    let ex = &arena.expected;
    let mut conn = connect(&addr.to_string())
        .unwrap_or_else(|e| panic!("an honest client cannot connect: {e}"));
    let hashed = minibox::ask::list::list(&mut conn, Filter::All, ListKind::Hashes)
        .unwrap_or_else(|e| panic!("hash listing failed: {e}"));
    let got: BTreeMap<String, (u64, Option<String>)> = hashed
        .into_iter()
        .map(|e| (e.path, (e.size, e.md5)))
        .collect();
    let want: BTreeMap<String, (u64, Option<String>)> = ex
        .files
        .iter()
        .map(|(name, bytes)| (name.clone(), (bytes.len() as u64, Some(md5_of(bytes)))))
        .collect();
    assert_eq!(got, want, "the hash listing is wrong");

    let plain: BTreeSet<String> = minibox::ask::list::list(&mut conn, Filter::All, ListKind::Index)
        .unwrap_or_else(|e| panic!("listing failed: {e}"))
        .into_iter()
        .map(|e| e.path)
        .collect();
    let want: BTreeSet<String> = ex.files.keys().chain(&ex.unreadable).cloned().collect();
    assert_eq!(plain, want, "the plain listing is wrong");

    let mut dirs = BTreeSet::new();
    minibox::ask::sync_list::sync_list(&mut conn, Vec::new(), &mut |e| {
        if e.kind == Kind::Dir {
            dirs.insert(e.path);
        }
    })
    .unwrap_or_else(|e| panic!("listing with folders failed: {e}"));
    assert_eq!(dirs, ex.dirs, "the folder listing is wrong");

    let entry = minibox::ask::hash::hash(&mut conn, "hello.txt")
        .unwrap_or_else(|e| panic!("hash verify failed: {e}"));
    assert_eq!(entry.md5, Some(md5_of(&ex.files["hello.txt"])));

    let local = LocalBox::open(&arena.client, "checker").expect("client box");
    let name = "deep/a/b/c/file.bin";
    minibox::ask::download::download_tcp(&mut conn, &local, name, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("download failed: {e}"));
    let landed = arena.client.join(name);
    assert_eq!(
        fs::read(&landed).expect("downloaded file"),
        ex.files[name],
        "the downloaded bytes differ"
    );
    let mode = fs::metadata(&landed).expect("stat").permissions().mode() & 0o777;
    let source = fs::metadata(arena.boxdir.join(name))
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, source, "permission bits not carried over");
    fs::remove_file(&landed).expect("remove the downloaded file");
    let tmp = arena.client.join(minibox::META_DIR).join("tmp");
    assert_eq!(
        fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0),
        0,
        "a temporary file was left behind"
    );
}
