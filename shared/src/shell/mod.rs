//! The interactive shell every client stage runs.
//!
//! It reads commands line by line and answers each from the other box, opening one TCP connection
//! per command. That is deliberate: stage 1's server serves one client at a time and drops a
//! client that is silent for 10 s, so a shell must not sit on a connection while its user thinks.
//!
//! On a terminal the shell shows a `>> ` prompt with line editing and the session's history
//! (rustyline) and a progress bar for downloads that take more than a moment (indicatif). On a
//! pipe, or with
//! `--json`, it shows neither: it reads stdin to its end and exits 0 if every command succeeded,
//! 1 otherwise. A failed command prints one clear error and the shell goes on.
//!
//! Layout: [`grammar`] turns a line into a [`Command`]; [`output`] turns an [`Outcome`] into a
//! table or a JSON line; this module runs commands against the peer.
//! [`terminal`] puts the terminal back in its normal mode when a signal stops a binary at the
//! prompt.

pub mod grammar;
pub mod output;
pub mod terminal;

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use grammar::{Command, Transport};
pub use output::Outcome;

use crate::ask::blocks::download_by_blocks;
use crate::ask::download::{download_tcp, Progress};
use crate::ask::{self, download_udp, hash::hash, list::list};
use crate::local::gate::open_in_box;
use crate::local::{partial, LocalBox};
use crate::protocol::error::{Error, Result};
use crate::protocol::message::{Entry, ErrorCode, Filter, ListKind, Request};
use crate::protocol::timestamp;
use crate::threaded::interrupt::Interrupt;
use crate::wire::conn::Connection;

/// Stage 3: runs one sync round for the shell's `sync` command.
pub type SyncHook<'a> = &'a mut dyn FnMut() -> Result<Outcome>;

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
    /// Stage 3: the `sync` command.
    sync: Option<SyncHook<'a>>,
    /// Stage 2: lets another thread stop the shell's commands (on SIGINT/SIGTERM).
    interrupt: Option<Arc<Interrupt>>,
}

impl<'a> Shell<'a> {
    /// A shell for the box `local`, asking the peer at `peer`.
    pub fn new(peer: impl Into<String>, local: Arc<LocalBox>, mode: Mode) -> Self {
        Shell {
            peer: peer.into(),
            local,
            mode,
            sync: None,
            interrupt: None,
        }
    }

    /// Stage 2: lets `interrupt` stop this shell from another thread: once stopped, the command running
    /// is abandoned (its connection is shut down) and no further command runs.
    pub fn with_interrupt(mut self, interrupt: Arc<Interrupt>) -> Self {
        self.interrupt = Some(interrupt);
        self
    }

    /// Stage 3: gives the shell a `sync` command.
    pub fn with_sync(mut self, hook: SyncHook<'a>) -> Self {
        self.sync = Some(hook);
        self
    }

    /// Reads commands from stdin until `quit` or end of input. Returns the exit status: 0 if
    /// every command succeeded, 1 otherwise.
    pub fn run(&mut self) -> i32 {
        let interactive = io::stdin().is_terminal() && self.mode == Mode::Human;
        let mut failures = 0usize;
        if interactive {
            // History lives in memory for the session. Keeping it in a file would need
            // rustyline's `with-file-history` feature (and its file-locking dependency); without
            // it, `load_history` panics ("not implemented"), so it is not called.
            match rustyline::DefaultEditor::new() {
                Ok(mut editor) => {
                    println!(
                        "connected box: {}  peer: {}  (type help)",
                        self.local.root().display(),
                        self.peer
                    );
                    loop {
                        match editor.readline(">> ") {
                            Ok(line) => {
                                if !line.trim().is_empty() {
                                    let _ = editor.add_history_entry(line.as_str());
                                }
                                if self.run_line(&line, &mut failures) {
                                    break;
                                }
                            }
                            // Ctrl-C clears the line; Ctrl-D leaves.
                            Err(rustyline::error::ReadlineError::Interrupted) => continue,
                            Err(_) => break,
                        }
                    }
                    return i32::from(failures > 0);
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

    /// Runs one line and prints its result. Returns true when the shell should end.
    pub fn run_line(&mut self, line: &str, failures: &mut usize) -> bool {
        let interrupt = self.interrupt.clone();
        let _job = match interrupt.as_deref().map(Interrupt::begin) {
            // The process is stopping: run nothing more.
            Some(None) => return true,
            Some(Some(job)) => Some(job),
            None => None,
        };
        let result = grammar::parse(line, timestamp::now_ns())
            .map_err(Error::Usage)
            .and_then(|cmd| match cmd {
                None => Ok(None),
                Some(cmd) => self.execute(cmd).map(Some),
            });
        let mut out = io::stdout().lock();
        match result {
            Ok(None) => false,
            Ok(Some(Outcome::Quit)) => true,
            Ok(Some(outcome)) => {
                let text = match self.mode {
                    Mode::Json => output::to_json(&outcome).map(|v| v.to_string()),
                    Mode::Human => output::to_text(&outcome),
                };
                if let Some(text) = text {
                    let _ = writeln!(out, "{text}");
                }
                false
            }
            Err(e) => {
                *failures += 1;
                let message = sentence(&e);
                match self.mode {
                    Mode::Json => {
                        let _ = writeln!(out, "{}", output::error_json(&message));
                    }
                    Mode::Human => {
                        let _ = writeln!(out, "error: {message}");
                    }
                }
                false
            }
        }
    }

    /// Runs one command against the peer. Every request made is logged in `.minibox/log`, with
    /// its outcome, in the words the serving side uses for it.
    ///
    /// # Errors
    /// Whatever went wrong, as one [`Error`].
    pub fn execute(&mut self, cmd: Command) -> Result<Outcome> {
        let request = match cmd {
            Command::Help => return Ok(Outcome::Help),
            Command::Quit => return Ok(Outcome::Quit),
            Command::Sync => {
                return match self.sync.as_mut() {
                    Some(hook) => hook(),
                    None => Err(Error::Usage("sync is only available in with_sync".into())),
                }
            }
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
        match request {
            Request::List { filter, listing } => {
                let files = list(&mut self.connect()?, filter, listing)?;
                let hashes = listing == ListKind::Hashes;
                Ok(Outcome::Files { files, hashes })
            }
            Request::Hash { path } => Ok(Outcome::Hash(hash(&mut self.connect()?, &path)?)),
            Request::Download { path } => self.download(Transport::Tcp, &path),
            Request::DownloadUdp { path } => self.download(Transport::Udp, &path),
            Request::Hello { .. } | Request::Prove { .. } => {
                Err(Error::Usage("the handshake is not a shell command".into()))
            }
            Request::SyncList { .. } => Err(Error::Usage(
                "the sync listing is part of a sync round, not a shell command".into(),
            )),
            Request::UdpReceived { .. } => Err(Error::Usage(
                "udp_received is part of a UDP download, not a shell command".into(),
            )),
            Request::Blocks { .. } | Request::Range { .. } => Err(Error::Usage(
                "blocks and ranges are parts of a download, not shell commands".into(),
            )),
        }
    }

    /// When the process is stopping, the error a command got (a closed connection, most likely)
    /// is only a consequence: say what really happened.
    fn interrupted(&self, e: Error, what: &str) -> Error {
        match &self.interrupt {
            Some(i) if i.is_stopped() => Error::Interrupted(format!(
                "interrupted, this box is stopping: {what} was abandoned and nothing was installed"
            )),
            _ => e,
        }
    }

    fn download(&self, transport: Transport, name: &str) -> Result<Outcome> {
        let mut conn = self.connect()?;
        let mut bar =
            ProgressBar::new(self.mode == Mode::Human && io::stderr().is_terminal(), name);
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

    /// Whether this box holds a version of `name` (or a partial download of it): then only the
    /// blocks it lacks need to cross the wire (see `ask::blocks`).
    fn has_a_version(&self, name: &str) -> bool {
        let here = open_in_box(self.local.root(), name).is_ok();
        here || partial::exists(&self.local.partial_dir(), name)
    }

    /// `download TCP` of a file this box has a version of: by blocks, or, from a peer that does
    /// not know blocks (an older build), whole, on a new connection if it hung up.
    fn by_blocks(
        &self,
        conn: &mut Connection,
        name: &str,
        progress: Progress<'_>,
    ) -> Result<Entry> {
        match download_by_blocks(conn, &self.local, name, progress) {
            Err(Error::Remote {
                code: ErrorCode::BadRequest,
                ..
            }) => {
                *conn = self.connect()?;
                download_tcp(conn, &self.local, name, progress)
            }
            Err(Error::Remote {
                code: ErrorCode::Unsupported,
                ..
            }) => download_tcp(conn, &self.local, name, progress),
            other => other,
        }
    }

    /// Opens a connection to the peer for one command (and lets the interrupt see it).
    fn connect(&self) -> Result<Connection> {
        let conn = ask::connect(&self.local, &self.peer)?;
        if let Some(interrupt) = &self.interrupt {
            if !interrupt.watch(conn.stream()) {
                return Err(Error::Interrupted("this box is stopping".into()));
            }
        }
        Ok(conn)
    }

    /// Logs a request this box made, in `.minibox/log`.
    fn note(&self, what: &str, outcome: &str) {
        self.local
            .log
            .record(&format!("-> {}", self.peer), what, outcome);
    }
}

/// One sentence for the user, starting with a capital-free clause as the shell prints it after
/// `error: `.
fn sentence(e: &Error) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or("unknown error").to_string()
}

/// A progress bar that appears only if the download takes more than a moment.
struct ProgressBar<'n> {
    /// Whether bars may be drawn at all (terminal, not JSON).
    enabled: bool,
    /// When the transfer began.
    started: Instant,
    /// The bar, once shown.
    bar: Option<indicatif::ProgressBar>,
    /// The file's name, shown beside the bar.
    name: &'n str,
}

impl<'n> ProgressBar<'n> {
    const DELAY: Duration = Duration::from_millis(300);

    fn new(enabled: bool, name: &'n str) -> Self {
        ProgressBar {
            enabled,
            started: Instant::now(),
            bar: None,
            name,
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() > Self::DELAY {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(self.name.to_string());
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
