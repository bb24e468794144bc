//! Putting the terminal back the way we found it.
//!
//! While the shell waits at its `>> ` prompt, the line editor (rustyline) has switched the
//! terminal to *raw* mode: no echo, no line buffering, Ctrl-C read as a key. It switches back
//! when the line is read. But a process stopped by SIGTERM while waiting at the prompt never gets
//! that far, and would leave the user's terminal raw (typing shows nothing; `reset` fixes it).
//! So a binary that runs the shell saves the terminal's mode at start ([`TerminalMode::save`])
//! and restores it ([`TerminalMode::restore`]) when a signal stops it.

use std::io::{self, IsTerminal};

use nix::sys::termios::{tcgetattr, tcsetattr, SetArg, Termios};

/// The terminal settings of stdin as they were when saved; nothing if stdin is not a terminal.
pub struct TerminalMode(Option<Termios>);

impl TerminalMode {
    /// Saves stdin's terminal settings (if stdin is a terminal).
    pub fn save() -> Self {
        let stdin = io::stdin();
        TerminalMode(if stdin.is_terminal() {
            tcgetattr(&stdin).ok()
        } else {
            None
        })
    }

    /// Puts the saved settings back. Harmless if nothing was saved or nothing changed.
    pub fn restore(&self) {
        if let Some(mode) = &self.0 {
            if let Err(e) = tcsetattr(io::stdin(), SetArg::TCSANOW, mode) {
                log::warn!("cannot restore the terminal's mode: {e}");
            }
        }
    }
}
