//! The index: what is in a box, and the filters the shell applies to it.
//!
//! A scan walks the box folder recursively and makes one [`Entry`] per regular file and folder:
//! its `/`-separated name, size, mtime to the nanosecond, permission bits and a MIME type guessed
//! from the name. Three things are left out on purpose, each with a log line where it matters:
//! minibox's own `.minibox/` folder, symbolic links (following them could leave the box) and names
//! that are not clean UTF-8 paths (a peer could not ask for them). A folder that cannot be read is
//! reported and skipped; the scan goes on.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::hash::Stamp;
use crate::paths;
use crate::protocol::{Entry, Filter, Kind};
use crate::META_DIR;

/// The permission bits minibox keeps and syncs: `rwx` for user, group and other. Setuid, setgid
/// and sticky bits are never carried over.
pub const MODE_MASK: u32 = 0o777;

/// One scanned item: the wire entry plus the stamp the hash cache needs.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// What the wire and the shell see.
    pub entry: Entry,
    /// The file's identity on disk (size, mtime, ctime, inode).
    pub stamp: Stamp,
}

/// Builds the entry for `name` from its metadata.
pub fn entry_of(name: &str, meta: &Metadata) -> Entry {
    let stamp = Stamp::of(meta);
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    Entry {
        path: name.to_string(),
        kind,
        size: if kind == Kind::Dir { 0 } else { stamp.size },
        mtime_ns: stamp.mtime_ns,
        mode: meta.permissions().mode() & MODE_MASK,
        mime: match kind {
            Kind::Dir => "inode/directory".to_string(),
            Kind::File => mime_of(name),
        },
        md5: None,
    }
}

/// The MIME type guessed from a name's extension (`application/octet-stream` when unknown).
pub fn mime_of(name: &str) -> String {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// Scans the box at `root`: every regular file and folder below it, sorted by name.
///
/// # Errors
/// Only if `root` itself cannot be read; trouble further down is logged and skipped.
pub fn scan(root: &Path) -> io::Result<Vec<Scanned>> {
    let mut out = Vec::new();
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut first = true;
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if first => return Err(e),
            Err(e) => {
                log::warn!("skipping folder {}: {e}", dir.display());
                continue;
            }
        };
        first = false;
        for dirent in entries {
            let dirent = match dirent {
                Ok(d) => d,
                Err(e) => {
                    log::warn!("skipping an entry of {}: {e}", dir.display());
                    continue;
                }
            };
            let path = dirent.path();
            if dir == root && dirent.file_name() == META_DIR {
                continue;
            }
            // symlink_metadata: look at the link itself, never where it points.
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    log::warn!("skipping {}: {e}", path.display());
                    continue;
                }
            };
            let ft = meta.file_type();
            if ft.is_symlink() {
                log::info!("skipping symbolic link {}", path.display());
                continue;
            }
            if !ft.is_file() && !ft.is_dir() {
                log::info!("skipping special file {}", path.display());
                continue;
            }
            let Some(name) = paths::name_of(root, &path) else {
                log::warn!(
                    "skipping {}: its name cannot be shared safely",
                    path.display()
                );
                continue;
            };
            if ft.is_dir() {
                pending.push(path);
            }
            out.push(Scanned {
                entry: entry_of(&name, &meta),
                stamp: Stamp::of(&meta),
            });
        }
    }
    out.sort_unstable_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(out)
}

/// A [`Filter`] made ready to test entries (the regex compiled once).
#[derive(Debug)]
pub enum Matcher {
    /// Everything matches.
    All,
    /// mtime within `[start, end]` ns.
    Modified(i64, i64),
    /// Name matches.
    Regex(Regex),
}

impl Matcher {
    /// Prepares `filter`.
    ///
    /// # Errors
    /// A sentence saying why the regular expression is invalid.
    pub fn new(filter: &Filter) -> Result<Self, String> {
        Ok(match filter {
            Filter::All => Matcher::All,
            Filter::Modified { start_ns, end_ns } => Matcher::Modified(*start_ns, *end_ns),
            Filter::Regex { pattern } => Matcher::Regex(compile(pattern)?),
        })
    }

    /// Whether `entry` passes.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Modified(start, end) => (*start..=*end).contains(&entry.mtime_ns),
            Matcher::Regex(re) => re.is_match(&entry.path),
        }
    }
}

/// Compiles a user's regular expression, with a size limit so that a hostile pattern cannot eat
/// the server's memory.
///
/// # Errors
/// A sentence saying why the pattern is invalid.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            // The regex crate ends its message with `error: <what>`; keep only the what.
            let last = detail.lines().last().unwrap_or("invalid").trim();
            let last = last.strip_prefix("error: ").unwrap_or(last);
            format!("\"{pattern}\" is not a valid regular expression ({last})")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_scan_lists_files_and_folders_and_skips_links_and_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::create_dir_all(root.join(META_DIR)).unwrap();
        fs::write(root.join(META_DIR).join("log"), "x").unwrap();
        fs::write(root.join("a/b/deep file.txt"), "hello").unwrap();
        fs::write(root.join("top.json"), "{}").unwrap();
        fs::set_permissions(root.join("top.json"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("/etc", root.join("link")).unwrap();

        let names: Vec<(String, Kind)> = scan(root)
            .unwrap()
            .into_iter()
            .map(|s| (s.entry.path, s.entry.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), Kind::Dir),
                ("a/b".into(), Kind::Dir),
                ("a/b/deep file.txt".into(), Kind::File),
                ("empty".into(), Kind::Dir),
                ("top.json".into(), Kind::File),
            ]
        );
        let all = scan(root).unwrap();
        let top = &all
            .iter()
            .find(|s| s.entry.path == "top.json")
            .unwrap()
            .entry;
        assert_eq!(top.mode, 0o755, "setuid is not kept");
        assert_eq!(top.mime, "application/json");
        assert_eq!(all[2].entry.size, 5);
        assert_eq!(all[2].entry.mime, "text/plain");
    }

    #[test]
    fn filters() {
        let e = |path: &str, mtime_ns| Entry {
            path: path.into(),
            kind: Kind::File,
            size: 0,
            mtime_ns,
            mode: 0o644,
            mime: mime_of(path),
            md5: None,
        };
        let m = Matcher::new(&Filter::Modified {
            start_ns: 10,
            end_ns: 20,
        })
        .unwrap();
        assert!(m.matches(&e("a", 10)) && m.matches(&e("a", 20)));
        assert!(!m.matches(&e("a", 9)) && !m.matches(&e("a", 21)));
        let m = Matcher::new(&Filter::Regex {
            pattern: r"\.txt$".into(),
        })
        .unwrap();
        assert!(m.matches(&e("dir/x.txt", 0)));
        assert!(!m.matches(&e("x.txt.bak", 0)));
        let err = Matcher::new(&Filter::Regex {
            pattern: "(".into(),
        })
        .unwrap_err();
        assert!(err.contains("not a valid regular expression"), "{err}");
        assert!(err.ends_with("(unclosed group)"), "{err}");
        assert_eq!(mime_of("noext"), "application/octet-stream");
    }
}
