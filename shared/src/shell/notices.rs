//! Stage 3: lines that a background thread (a sync round) has to tell the person at the shell.
//!
//! Printed as they are, they would land in the middle of what the person is typing. While the
//! shell waits at its prompt, [`Notices::say`] hands the line to the line editor's external
//! printer, which prints it above the prompt and draws the prompt and the half-typed line
//! again. With no terminal (no line editor), the line goes to stdout.

use std::io::Write;
use std::sync::Mutex;

use crate::util::lock;

/// Where a background thread's lines go. Share it with `Arc`.
#[derive(Default)]
pub struct Notices {
    /// The line editor's printer, while the shell has one.
    printer: Mutex<Option<Box<dyn rustyline::ExternalPrinter + Send>>>,
}

impl Notices {
    /// Lines go to stdout until a shell attaches its printer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prints `text` (one or more lines) above the prompt, or on stdout.
    pub fn say(&self, text: &str) {
        let mut printer = lock(&self.printer);
        if let Some(p) = printer.as_mut() {
            if p.print(format!("{text}\n")).is_ok() {
                return;
            }
        }
        drop(printer);
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }

    /// The shell's line editor takes over the printing.
    pub(crate) fn attach(&self, printer: Box<dyn rustyline::ExternalPrinter + Send>) {
        *lock(&self.printer) = Some(printer);
    }

    /// The shell ended: lines go to stdout again.
    pub(crate) fn detach(&self) {
        *lock(&self.printer) = None;
    }
}
