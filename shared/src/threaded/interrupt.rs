//! Stage 2: stopping a thread that makes requests, from another thread.
//!
//! A server thread can be stopped by shutting its socket down (see [`super::server`]). The shell
//! is harder: between commands it blocks reading its input, and a thread blocked reading a
//! terminal or a pipe cannot be woken portably (closing the descriptor does not wake the read on
//! Linux, and this workspace allows no `unsafe` code to send the thread a signal). What *can* be
//! done, and what matters for the files, is this:
//!
//! - no new command starts once the process is stopping;
//! - the command running has its connection shut down, so a transfer fails at once and removes
//!   its temporary file (nothing was installed under a real name);
//! - the owner waits until that command has left its critical part, so that the process never
//!   ends between "old file moved to the trash" and "new file renamed into place".
//!
//! [`Interrupt`] is that handshake. The worker brackets every command with [`Interrupt::begin`]
//! (which hands back a [`Job`] guard) and reports every connection it opens with
//! [`Interrupt::watch`]; the owner calls [`Interrupt::stop`], then [`Interrupt::wait_idle`].
//!
//! Ctrl-C on a terminal is the same move for one command only: [`Interrupt::cancel`] shuts the
//! running command's connection down (its download fails at once and removes its temporary
//! file), and the next command runs as usual.

use std::net::{Shutdown, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::util::lock;

/// The state both sides share.
#[derive(Debug, Default)]
struct State {
    /// Set once by [`Interrupt::stop`]; never cleared.
    stopped: bool,
    /// Whether a command is running.
    busy: bool,
    /// Set by [`Interrupt::cancel`] for the running command; cleared when the next one begins.
    cancelled: bool,
    /// A handle on the connection the running command uses, to shut it down from `stop`.
    socket: Option<TcpStream>,
}

/// What else a cancel must cut short (stage 3: a sync round runs on connections of its own).
#[derive(Default)]
struct CancelHook(Option<Box<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for CancelHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "CancelHook(set)"
        } else {
            "CancelHook(none)"
        })
    }
}

/// Lets one thread stop another one's commands cleanly. Share it with `Arc`.
#[derive(Debug, Default)]
pub struct Interrupt {
    /// See [`State`].
    state: Mutex<State>,
    /// Signalled when a command ends.
    idle: Condvar,
    /// Called by [`Interrupt::cancel`] while a command runs.
    hook: Mutex<CancelHook>,
}

/// A command in progress; dropping it marks the worker idle again.
#[must_use = "the command counts as running only while the guard lives"]
#[derive(Debug)]
pub struct Job<'a> {
    /// Whose command this is.
    interrupt: &'a Interrupt,
}

impl Interrupt {
    /// A fresh handshake, not stopped, idle.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The worker is about to run a command. `None` if the process is stopping: the worker
    /// should not run it, and should end.
    pub fn begin(&self) -> Option<Job<'_>> {
        let mut state = self.state();
        if state.stopped {
            return None;
        }
        state.busy = true;
        state.cancelled = false;
        Some(Job { interrupt: self })
    }

    /// The worker opened `stream` for the running command. Returns false if the process is
    /// stopping (the stream is shut down already and the command should give up).
    pub fn watch(&self, stream: &TcpStream) -> bool {
        let mut state = self.state();
        if state.stopped || state.cancelled {
            let _ = stream.shutdown(Shutdown::Both);
            return false;
        }
        state.socket = stream.try_clone().ok();
        true
    }

    /// Ctrl-C: the running command, if any, is abandoned (its connection shut down; a
    /// connection it opens later is refused); later commands run as usual. Returns whether a
    /// command was running.
    pub fn cancel(&self) -> bool {
        let mut state = self.state();
        if !state.busy {
            return false;
        }
        state.cancelled = true;
        if let Some(socket) = state.socket.take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        drop(state);
        if let Some(hook) = &lock(&self.hook).0 {
            hook();
        }
        true
    }

    /// Stage 3: `hook` is called too when a command is cancelled (it cuts short what the
    /// command runs on connections the shell does not see, such as a sync round's).
    pub fn on_cancel(&self, hook: impl Fn() + Send + Sync + 'static) {
        lock(&self.hook).0 = Some(Box::new(hook));
    }

    /// Whether the running command was cancelled ([`Interrupt::cancel`]).
    pub fn is_cancelled(&self) -> bool {
        self.state().cancelled
    }

    /// Whether [`Interrupt::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.state().stopped
    }

    /// No command starts from now on, and the running one's connection is shut down, which makes
    /// its transfer fail at once. Does not wait; see [`Interrupt::wait_idle`].
    pub fn stop(&self) {
        let mut state = self.state();
        state.stopped = true;
        if let Some(socket) = state.socket.take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Waits up to `limit` for the running command, if any, to end. Returns true if no command
    /// is running.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.state();
        while state.busy {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .idle
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

impl Drop for Job<'_> {
    fn drop(&mut self) {
        let mut state = self.interrupt.state();
        state.busy = false;
        state.socket = None;
        drop(state);
        self.interrupt.idle.notify_all();
    }
}

#[cfg(test)]
mod tests;
