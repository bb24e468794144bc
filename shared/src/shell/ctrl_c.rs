//! Ctrl-C and the stop signals, for a process whose shell may be reading a terminal.
//!
//! At the `>> ` prompt the line editor reads Ctrl-C as a key and clears the line. While a command
//! runs the terminal is in its normal mode, and Ctrl-C makes the kernel send SIGINT to the
//! process. What that means depends on where the commands come from:
//!
//! - stdin is a terminal: a person pressed Ctrl-C to give up on *this command* (a download that
//!   takes too long). The command is cancelled ([`Interrupt::cancel`]: its connection is shut
//!   down, its temporary file removed) and the prompt comes back;
//! - otherwise (a pipe, a script, `kill -INT`), and for SIGTERM always: the process stops
//!   cleanly, and the terminal is put back in the mode it was found in.
//!
//! [`SignalWatch`] is a named thread that applies that rule; the owner says what "stop" means.

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{select, Sender};
use signal_hook::consts::SIGINT;

use crate::protocol::error::{Error, Result};
use crate::threaded::interrupt::Interrupt;
use crate::threaded::signals::StopSignals;

/// Whether `signal` cancels the running command (SIGINT with a terminal on stdin) rather than
/// stopping the process.
pub fn cancels(signal: i32) -> bool {
    signal == SIGINT && io::stdin().is_terminal()
}

/// A thread that turns signals into shell actions until it is dropped.
pub struct SignalWatch {
    /// Closing it ends the thread.
    done: Option<Sender<()>>,
    /// The watcher thread.
    thread: Option<JoinHandle<()>>,
}

impl SignalWatch {
    /// Watches `signals`: Ctrl-C on a terminal cancels `interrupt`'s running command; any other
    /// stop signal stops `interrupt` and calls `stop` with the signal's number (`stop` usually
    /// waits for the command to let go, restores the terminal and ends the process).
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn start(
        signals: StopSignals,
        interrupt: Arc<Interrupt>,
        stop: impl FnOnce(i32) + Send + 'static,
    ) -> Result<Self> {
        let (done, finished) = crossbeam_channel::bounded::<()>(0);
        let thread = thread::Builder::new()
            .name("signals-watch".into())
            .spawn(move || loop {
                let signal = select! {
                    recv(signals.receiver) -> signal => signal,
                    recv(finished) -> _ => return,
                };
                let Ok(signal) = signal else { return };
                if cancels(signal) {
                    interrupt.cancel();
                    continue;
                }
                interrupt.stop();
                stop(signal);
                return;
            })
            .map_err(|e| Error::io("signal thread", e))?;
        Ok(SignalWatch {
            done: Some(done),
            thread: Some(thread),
        })
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long a stop waits for the running command to let go of the file it installs.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl SignalWatch {
    /// The usual watch for a process whose shell reads stdin: the terminal's mode is saved now
    /// (before the line editor changes it); Ctrl-C on a terminal cancels the running command;
    /// any other stop signal runs `before` (stop what else runs), waits up to [`GRACE`] for the
    /// command to let go, puts the terminal back, and ends the process with `status(signal)`.
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn for_shell(
        signals: StopSignals,
        interrupt: &Arc<Interrupt>,
        status: fn(i32) -> i32,
        before: impl FnOnce() + Send + 'static,
    ) -> Result<Self> {
        let terminal = super::terminal::TerminalMode::save();
        let waiting = Arc::clone(interrupt);
        Self::start(signals, Arc::clone(interrupt), move |signal| {
            before();
            if !waiting.wait_idle(GRACE) {
                log::warn!("the running command did not end in {GRACE:?}; leaving anyway");
            }
            terminal.restore();
            std::process::exit(status(signal));
        })
    }
}
