//! Layer 0: helpers every layer uses.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, even if a thread panicked while holding it. Every mutex in minibox guards state
/// that each change leaves consistent (plain assignments that cannot panic half-way), so a
/// panic elsewhere is no reason to stop the rest of the process.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The most memory this process has held so far, in bytes: the kernel's "high water mark" of
/// its resident set (`VmHWM` in `/proc/self/status`). `None` where Linux does not say. What a
/// peer's listing costs this box is measured with it (`docs/SECURITY.md`).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib = line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests;
