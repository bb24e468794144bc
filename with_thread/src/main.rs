//! Stage 2 of 3: one program per box, serving its peer while its user types.
//!
//! Stage 1 had two programs, and its server answered one client at a time. Here both boxes run
//! this same binary, and it does two things at once:
//!
//! - a **server** ([`minibox::threaded::Server`]): an acceptor thread that gives every connection a
//!   thread of its own, up to a cap, so any number of peers are answered at once;
//! - the **shell** ([`minibox::shell::Shell`]), unchanged from stage 1, on a thread named `shell`,
//!   asking the peer at `--peer` and downloading into this box.
//!
//! They share the box through an `Arc<LocalBox>`: one per-file lock table (a file being installed
//! by the shell is never served half-done by the server), one hash cache, one activity log.
//!
//! The main thread owns everything and only waits, with `select!`, for whichever comes first:
//! the shell ending (`quit` or end of input) or SIGINT/SIGTERM, which arrive as channel messages
//! ([`minibox::threaded::signals::StopSignals`]). Ctrl-C on a terminal only cancels the shell's
//! running command ([`minibox::shell::ctrl_c`]). Then it stops the server (joining every connection thread
//! and freeing the port) and, on a signal, stops the shell's running command cleanly
//! ([`minibox::threaded::interrupt`]) before leaving. The stage's chapter is `with_thread/README.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use clap::Parser;
use crossbeam_channel::{select, Receiver};
use minibox::cli::{announce, init_logging};
use minibox::local::LocalBox;
use minibox::shell::ctrl_c::cancels;
use minibox::shell::terminal::TerminalMode;
use minibox::shell::{Mode, Shell};
use minibox::threaded::interrupt::Interrupt;
use minibox::threaded::signals::StopSignals;
use minibox::threaded::{Server, ServerConfig};
use minibox::wire::listen::{bind, warn_if_exposed};

/// How long a stop waits for the shell's running command to give up. A transfer gives up as soon
/// as its socket is shut down; only an install already under way (a rename) must be let finish.
const SHELL_GRACE: Duration = Duration::from_secs(10);

/// Serve this box and query the other one, at the same time (minibox stage 2).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// This box: the folder served, and where downloads land (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Where to listen, TCP and UDP on the same port (e.g. 127.0.0.1:60001).
    #[arg(long)]
    listen: String,
    /// The other box, asked by the shell's commands (e.g. 127.0.0.1:60002).
    #[arg(long)]
    peer: String,
    /// Print one line of JSON per command instead of tables.
    #[arg(long)]
    json: bool,
    /// Only talk to peers that prove they know the secret in FILE (the same file on both sides).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Keep what goes to the trash N days (0: forever); older items are removed.
    #[arg(long, value_name = "N", default_value_t = minibox::local::trash::DEFAULT_DAYS)]
    trash_days: u64,
}

fn main() -> ExitCode {
    init_logging();
    // Bad arguments: clap prints the usage and exits with status 2.
    let args = Args::parse();
    match run(&args) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("with_thread: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the process ends.
enum End {
    /// The shell ended (`quit` or end of input) with this exit status.
    Shell(i32),
    /// SIGINT or SIGTERM arrived (the signal's number).
    Signal(i32),
}

fn run(args: &Args) -> minibox::Result<u8> {
    let local = Arc::new(LocalBox::from_args(
        &args.dir,
        None,
        args.secret_file.as_deref(),
    )?);
    local.trash.keep_days(args.trash_days);
    // From here on SIGINT/SIGTERM no longer kill the process outright: they become messages,
    // and the main thread decides how to stop.
    let signals = StopSignals::install()?;
    let (listener, udp) = bind(&args.listen)?;
    let server = Server::start(listener, udp, Arc::clone(&local), ServerConfig::default())?;
    warn_if_exposed(server.addr(), local.secret());
    announce(local.root(), server.addr());

    let interrupt = Arc::new(Interrupt::new());
    // Before the shell's line editor can put the terminal in raw mode.
    let terminal = TerminalMode::save();
    let mode = if args.json { Mode::Json } else { Mode::Human };
    let (shell, shell_done) = start_shell(&args.peer, &local, mode, &interrupt)?;

    let end = loop {
        let end = select! {
            recv(shell_done) -> status => End::Shell(status.unwrap_or(1)),
            recv(signals.receiver) -> signal => End::Signal(signal.unwrap_or(15)),
        };
        match end {
            // Ctrl-C on a terminal: give up on the running command, keep the box.
            End::Signal(signal) if cancels(signal) => {
                interrupt.cancel();
            }
            end => break end,
        }
    };
    match end {
        End::Shell(status) => {
            server.stop();
            let _ = shell.join();
            log::info!("stopped: the shell ended, every thread joined");
            Ok(u8::try_from(status).unwrap_or(1))
        }
        End::Signal(signal) => {
            // Abandon the shell's transfer (if any) and stop the server, in parallel: both only
            // shut sockets down. Then wait until the shell is between commands, so the process
            // never ends halfway through installing a file.
            interrupt.stop();
            server.stop();
            let idle = interrupt.wait_idle(SHELL_GRACE);
            // The shell may be waiting at its prompt, with the terminal in raw mode.
            terminal.restore();
            if shell.is_finished() {
                let _ = shell.join();
                log::info!("stopped by signal {signal}: every thread joined");
            } else if idle {
                // Blocked reading stdin: no portable, safe way to wake it. It holds nothing; the
                // process exit ends it.
                log::info!("stopped by signal {signal}: server joined; the shell thread waits on its input and ends with the process");
            } else {
                log::warn!("stopped by signal {signal}: the shell's command did not end in {SHELL_GRACE:?}; leaving anyway (its temporary file is removed at the next start)");
            }
            Ok(u8::try_from(128 + signal).unwrap_or(1))
        }
    }
}

/// Runs the shell on its own named thread. The receiver gets its exit status when it ends (or
/// disconnects, should it panic).
fn start_shell(
    peer: &str,
    local: &Arc<LocalBox>,
    mode: Mode,
    interrupt: &Arc<Interrupt>,
) -> minibox::Result<(JoinHandle<()>, Receiver<i32>)> {
    let (done, shell_done) = crossbeam_channel::bounded(1);
    let (peer, local, interrupt) = (peer.to_string(), Arc::clone(local), Arc::clone(interrupt));
    let handle = thread::Builder::new()
        .name("shell".into())
        .spawn(move || {
            let status = Shell::new(peer, local, mode)
                .with_interrupt(interrupt)
                .run();
            let _ = done.send(status);
        })
        .map_err(|e| minibox::Error::io("shell thread", e))?;
    Ok((handle, shell_done))
}
