//! Stage 2: SIGINT and SIGTERM as messages on a channel, so a stage's main loop can `select!`
//! on them next to its other work and stop cleanly.

use std::thread::{self, JoinHandle};

use crate::protocol::error::{Error, Result};

/// Delivers SIGINT and SIGTERM as messages on a channel, so a stage's main loop can `select!` on
/// them next to its other work and stop cleanly. Dropping it stops the watcher thread.
pub struct StopSignals {
    /// One message per signal received (the signal's number).
    pub receiver: crossbeam_channel::Receiver<i32>,
    /// Closes the signal iterator, which ends the thread.
    handle: signal_hook::iterator::Handle,
    /// The watcher thread.
    thread: Option<JoinHandle<()>>,
}

impl StopSignals {
    /// Starts watching SIGINT and SIGTERM. From now on they no longer kill the process at once:
    /// the owner decides what to do.
    ///
    /// # Errors
    /// If the handlers cannot be installed.
    pub fn install() -> Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .map_err(|e| Error::io("signal handlers", e))?;
        let handle = signals.handle();
        let (tx, receiver) = crossbeam_channel::unbounded();
        let thread = thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if tx.send(signal).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("signal thread", e))?;
        Ok(StopSignals {
            receiver,
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
