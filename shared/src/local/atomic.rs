//! Writing a small file of `.minibox/` whole or not at all: to a temporary file first, then
//! renamed over the old one, so a crash leaves either the old contents or the new, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so readers
/// see the old contents or the new, never a mix.
///
/// # Errors
/// If the folder cannot be created or written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // Unique per call, not only per process: two server threads saving the hash cache at once
    // must not write into the same temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}
