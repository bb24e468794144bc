//! The interactive shell every client stage runs.
//!
//! It reads commands line by line and answers each from the other box, opening one TCP connection
//! per command. That is deliberate: stage 1's server serves one client at a time and drops a
//! client that is silent for 10 s, so a shell must not sit on a connection while its user thinks.
//!
//! On a terminal the shell shows a `>> ` prompt with line editing and the session's history
//! (rustyline), a progress bar for downloads that take more than a moment and a spinner while
//! the other box works on a long answer ([`progress`]); Ctrl-C cancels the running command
//! ([`ctrl_c`]); Ctrl-D, `quit` or `exit` leave with status 0. On a pipe, or with `--json`, it
//! shows neither: it reads stdin to its end and exits 0 if every command succeeded, 1
//! otherwise. A failed command prints one clear error and the shell goes on.
//!
//! Layout: [`grammar`] turns a line into a [`Command`]; [`output`] turns an [`Outcome`] into a
//! table or a JSON line; [`box_commands`] answers the local commands about this box (conflicts,
//! the trash); this module runs the rest against the peer. [`terminal`] puts the terminal back
//! in its normal mode when a signal stops a binary at the prompt. Stage 3 adds its own commands
//! through [`StageCommands`], and prints its rounds above the prompt through [`notices`]; `turn`
//! (stage 3) lets a download wait for a sync round that fetches the same file.

pub mod box_commands;
mod by_blocks;
pub mod ctrl_c;
pub mod grammar;
pub mod notices;
pub mod output;
pub mod progress;
pub mod stage;
pub mod terminal;
mod turn;

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Arc;

pub use grammar::{Command, Transport};
pub use output::Outcome;
pub use stage::StageCommands;

use self::notices::Notices;
use self::progress::{ProgressBar, Waiting};
use crate::ask::download::download_tcp;
use crate::ask::{self, download_udp, hash::hash, list::list};
use crate::local::log::made;
use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::message::{Filter, ListKind, Request};
use crate::protocol::timestamp;
use crate::threaded::interrupt::Interrupt;
use crate::wire::conn::Connection;

/// How the shell prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tables, prompt and progress bars (the latter two only on a terminal).
    Human,
    /// One JSON line per command, nothing else on stdout.
    Json,
}

/// A shell talking to one peer on behalf of one box.
pub struct Shell<'a> {
    /// The other box's address.
    peer: String,
    /// This box: downloads land here.
    local: Arc<LocalBox>,
    /// Tables or JSON.
    mode: Mode,
    /// Stage 3: `sync` and `status`.
    stage: Option<&'a dyn StageCommands>,
    /// Stage 3: where background rounds print, above the prompt.
    notices: Option<Arc<Notices>>,
    /// Lets another thread stop the shell's commands (SIGTERM) or cancel one (Ctrl-C).
    interrupt: Option<Arc<Interrupt>>,
}

impl<'a> Shell<'a> {
    /// A shell for the box `local`, asking the peer at `peer`.
    pub fn new(peer: impl Into<String>, local: Arc<LocalBox>, mode: Mode) -> Self {
        Shell {
            peer: peer.into(),
            local,
            mode,
            stage: None,
            notices: None,
            interrupt: None,
        }
    }

    /// Lets `interrupt` stop this shell from another thread (once stopped, the command running
    /// is abandoned and no further command runs) or cancel the running command (Ctrl-C).
    pub fn with_interrupt(mut self, interrupt: Arc<Interrupt>) -> Self {
        self.interrupt = Some(interrupt);
        self
    }

    /// Stage 3: gives the shell the stage's own commands (`sync`, `status`).
    pub fn with_stage(mut self, stage: &'a dyn StageCommands) -> Self {
        self.stage = Some(stage);
        self
    }

    /// Stage 3: lines said to `notices` appear above the prompt while the shell runs.
    pub fn with_notices(mut self, notices: Arc<Notices>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// Reads commands from stdin until `quit` or end of input. Returns the exit status: on a
    /// terminal 0; otherwise 0 if every command succeeded, 1 if one failed.
    pub fn run(&mut self) -> i32 {
        let mut failures = 0usize;
        if io::stdin().is_terminal() && self.mode == Mode::Human {
            match rustyline::DefaultEditor::new() {
                Ok(editor) => {
                    self.run_editor(editor, &mut failures);
                    return 0;
                }
                Err(e) => log::warn!("no line editing ({e}); reading plain lines"),
            }
        }
        let stdin = io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if self.run_line(&line, &mut failures) {
                break;
            }
        }
        i32::from(failures > 0)
    }

    /// The terminal's loop: prompt, line editing, history (kept in memory for the session).
    fn run_editor(&mut self, mut editor: rustyline::DefaultEditor, failures: &mut usize) {
        println!(
            "this box: {}  asking: {}  (type help; Ctrl-C cancels a command, Ctrl-D leaves)",
            self.local.root().display(),
            self.peer
        );
        if let Some(notices) = &self.notices {
            match editor.create_external_printer() {
                Ok(printer) => notices.attach(Box::new(printer)),
                Err(e) => log::info!("background lines go to stdout: {e}"),
            }
        }
        loop {
            match editor.readline(">> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    if self.run_line(&line, failures) {
                        break;
                    }
                }
                // Ctrl-C at the prompt clears the line; Ctrl-D leaves.
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(_) => break,
            }
        }
        if let Some(notices) = &self.notices {
            notices.detach();
        }
    }

    /// Runs one line and prints its result. Returns true when the shell should end.
    pub fn run_line(&mut self, line: &str, failures: &mut usize) -> bool {
        let interrupt = self.interrupt.clone();
        let _job = match interrupt.as_deref().map(Interrupt::begin) {
            // The process is stopping: run nothing more.
            Some(None) => return true,
            Some(Some(job)) => Some(job),
            None => None,
        };
        self.local.trash.expire_daily();
        let result = grammar::parse(line, timestamp::now_ns())
            .map_err(Error::Usage)
            .and_then(|cmd| match cmd {
                None => Ok(None),
                Some(cmd) => self.execute(cmd).map(Some),
            });
        let text = match result {
            Ok(None) => return false,
            Ok(Some(Outcome::Quit)) => return true,
            Ok(Some(outcome)) => match self.mode {
                Mode::Json => output::to_json(&outcome).map(|v| v.to_string()),
                Mode::Human => output::to_text(&outcome),
            },
            Err(e) => {
                *failures += 1;
                let message = sentence(&e);
                Some(match self.mode {
                    Mode::Json => output::error_json(&message).to_string(),
                    Mode::Human => format!("error: {message}"),
                })
            }
        };
        if let Some(text) = text {
            // One write, newline included: a terminal's echo of keys typed meanwhile cannot land
            // between the answer and its end of line.
            let mut out = io::stdout().lock();
            let _ = out.write_all(format!("{text}\n").as_bytes());
            let _ = out.flush();
        }
        false
    }

    /// Runs one command: a local one here, a request to the peer in [`Shell::ask`]. Every
    /// request made is logged in `.minibox/log`, with its outcome, in the words the serving side
    /// uses for it.
    ///
    /// # Errors
    /// Whatever went wrong, as one [`Error`].
    pub fn execute(&mut self, cmd: Command) -> Result<Outcome> {
        let stage_only = |what: &str| {
            Err(Error::Usage(format!(
                "{what} is only available in with_sync"
            )))
        };
        let request = match cmd {
            Command::Help => return Ok(Outcome::Help),
            Command::Quit => return Ok(Outcome::Quit),
            Command::Sync => return self.stage.map_or_else(|| stage_only("sync"), |s| s.sync()),
            Command::Status => {
                return self
                    .stage
                    .map_or_else(|| stage_only("status"), |s| s.status())
            }
            Command::Conflicts => return box_commands::conflicts(&self.local),
            Command::TrashList => return Ok(box_commands::trash_list(&self.local)),
            Command::TrashRestore(path) => return box_commands::trash_restore(&self.local, &path),
            Command::Index(filter) => Request::List {
                filter,
                listing: ListKind::Index,
            },
            Command::HashCheckall => Request::List {
                filter: Filter::All,
                listing: ListKind::Hashes,
            },
            Command::HashVerify(path) => Request::Hash { path },
            Command::Download(Transport::Tcp, path) => Request::Download { path },
            Command::Download(Transport::Udp, path) => Request::DownloadUdp { path },
        };
        let what = request.describe();
        let result = self.ask(request).map_err(|e| self.interrupted(e, &what));
        let outcome = match &result {
            Ok(Outcome::Files { files, .. }) => format!("ok {} files", files.len()),
            Ok(Outcome::Hash(entry)) => format!("ok md5 {}", entry.md5.as_deref().unwrap_or("?")),
            Ok(Outcome::Downloaded { entry, .. }) => format!(
                "ok {} bytes md5 {}",
                entry.size,
                entry.md5.as_deref().unwrap_or("?")
            ),
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        self.note(&what, &outcome);
        result
    }

    /// Sends one request to the peer on a fresh connection and collects the answer.
    fn ask(&self, request: Request) -> Result<Outcome> {
        let wait = |message: String| Waiting::start(self.shows_progress(), message);
        match request {
            Request::List { filter, listing } => {
                let hashes = listing == ListKind::Hashes;
                let _waiting = wait(match hashes {
                    true => "the other box is reading its files to hash them".into(),
                    false => "waiting for the other box's listing".into(),
                });
                let files = list(&mut self.connect()?, filter, listing)?;
                Ok(Outcome::Files { files, hashes })
            }
            Request::Hash { path } => {
                let _waiting = wait(format!("the other box is hashing {path}"));
                Ok(Outcome::Hash(hash(&mut self.connect()?, &path)?))
            }
            Request::Download { path } => self.download(Transport::Tcp, &path),
            Request::DownloadUdp { path } => self.download(Transport::Udp, &path),
            other => Err(Error::Usage(format!(
                "{} is part of the protocol, not a shell command",
                other.describe()
            ))),
        }
    }

    /// Whether progress bars and spinners may be drawn.
    fn shows_progress(&self) -> bool {
        self.mode == Mode::Human && io::stderr().is_terminal()
    }

    /// When the command was cancelled (Ctrl-C) or the process is stopping, the error it got (a
    /// closed connection, most likely) is only a consequence: say what really happened.
    fn interrupted(&self, e: Error, what: &str) -> Error {
        let Some(i) = &self.interrupt else { return e };
        let nothing = match what.starts_with("download") {
            true => " and nothing was installed",
            false => "",
        };
        if i.is_stopped() {
            return Error::Interrupted(format!(
                "interrupted, this box is stopping: {what} was abandoned{nothing}"
            ));
        }
        if i.is_cancelled() {
            return Error::Interrupted(format!("cancelled: {what} was abandoned{nothing}"));
        }
        e
    }

    fn download(&self, transport: Transport, name: &str) -> Result<Outcome> {
        // One transfer of a file at a time in this box: a sync round may be fetching it.
        let (_claim, here) = self.take_turn(name)?;
        if let Some(entry) = here {
            return Ok(Outcome::Downloaded { entry, transport });
        }
        let mut conn = self.connect()?;
        let mut bar = ProgressBar::new(self.shows_progress(), name);
        let mut progress = |done: u64, total: u64| bar.update(done, total);
        let result = match transport {
            Transport::Tcp if self.has_a_version(name) => {
                self.by_blocks(&mut conn, name, &mut progress)
            }
            Transport::Tcp => download_tcp(&mut conn, &self.local, name, &mut progress),
            Transport::Udp => download_udp::download(&mut conn, &self.local, name, &mut progress),
        };
        bar.finish();
        result.map(|entry| Outcome::Downloaded { entry, transport })
    }

    /// Opens a connection to the peer for one command (and lets the interrupt see it).
    fn connect(&self) -> Result<Connection> {
        let conn = ask::connect(&self.local, &self.peer)?;
        if let Some(interrupt) = &self.interrupt {
            if !interrupt.watch(conn.stream()) {
                return Err(Error::Interrupted("cancelled".into()));
            }
        }
        Ok(conn)
    }

    /// Logs a request this box made, in `.minibox/log`.
    fn note(&self, what: &str, outcome: &str) {
        self.local.log.record(&made(&self.peer), what, outcome);
    }
}

/// One sentence for the user, starting with a capital-free clause as the shell prints it after
/// `error: `.
fn sentence(e: &Error) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or("unknown error").to_string()
}
