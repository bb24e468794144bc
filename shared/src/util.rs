//! Layer 0: a helper every layer uses.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, even if a thread panicked while holding it. Every mutex in minibox guards state
/// that each change leaves consistent (plain assignments that cannot panic half-way), so a
/// panic elsewhere is no reason to stop the rest of the process.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
