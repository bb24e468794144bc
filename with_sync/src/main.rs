//! Stage 3 of 3: the `with_sync` binary.
//!
//! ```text
//! with_sync --dir DIR --listen ADDR --peer ADDR [--interval SECS] [--name NAME] [--once] [--json]
//! ```
//!
//! Three ways to run:
//!
//! - `--once`: serve nothing, run one round against `--peer`, print what it did, exit (0 if the
//!   round succeeded). Works against any stage's server, stage 1 included.
//! - stdin is not a terminal: serve the box and sync in the background every `--interval`
//!   seconds until SIGINT or SIGTERM, then stop cleanly.
//! - stdin is a terminal: the same, plus the shared shell, which gains a `sync` command.
//!
//! The background loop is a `crossbeam_channel::tick` and a `select!` on the stop channel, so a
//! stop is seen at once rather than after the next sleep. A round that fails (the peer is down)
//! is logged once and retried on every tick.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use clap::Parser;
use minibox::cli::{announce, init_logging, init_logging_at};
use minibox::local::log::made;
use minibox::local::LocalBox;
use minibox::shell::ctrl_c::SignalWatch;
use minibox::shell::notices::Notices;
use minibox::shell::{output, Mode, Shell};
use minibox::threaded::interrupt::Interrupt;
use minibox::threaded::signals::StopSignals;
use minibox::threaded::{Server, ServerConfig};
use minibox::wire::listen::{bind, warn_if_exposed};
use with_sync::round::Syncer;
use with_sync::shell::{render, Live, Reports};
use with_sync::state::Book;

/// Keep two boxes in sync: serve this one, and pull from the peer in the background
/// (minibox stage 3).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The box: the folder served and kept in sync (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Where to listen, TCP and UDP on the same port (not needed with --once).
    #[arg(long, required_unless_present = "once")]
    listen: Option<String>,
    /// The other box's address.
    #[arg(long)]
    peer: String,
    /// Seconds between background rounds; fractions are accepted (e.g. 0.2, handy in tests).
    #[arg(long, default_value = "5", value_parser = parse_interval)]
    interval: Duration,
    /// This box's name, used in conflict copy names and logs [default: the box folder's name].
    #[arg(long)]
    name: Option<String>,
    /// Serve nothing: run one sync round against --peer (pull), print what it did, exit.
    #[arg(long)]
    once: bool,
    /// Print one line of JSON per result instead of text.
    #[arg(long)]
    json: bool,
    /// Only talk to peers that prove they know the secret in FILE (the same file on both sides).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Keep what goes to the trash N days (0: forever); older items are removed.
    #[arg(long, value_name = "N", default_value_t = minibox::local::trash::DEFAULT_DAYS)]
    trash_days: u64,
}

/// Reads `--interval`: positive seconds, at most a day.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err("the interval must be more than 0 and at most 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let args = Args::parse();
    // On a terminal the shell says what matters in its own words; no log lines over the prompt.
    if std::io::stdin().is_terminal() && !args.once {
        init_logging_at("error");
    } else {
        init_logging();
    }
    let mode = if args.json { Mode::Json } else { Mode::Human };
    let opened = LocalBox::from_args(&args.dir, args.name.as_deref(), args.secret_file.as_deref());
    let local = match opened {
        Ok(local) => Arc::new(local),
        Err(e) => {
            eprintln!("with_sync: {e}");
            return ExitCode::FAILURE;
        }
    };
    local.trash.keep_days(args.trash_days);
    let book = Arc::new(Book::open(&local.meta_dir()));
    let syncer = Arc::new(Syncer::new(
        Arc::clone(&local),
        Arc::clone(&book),
        args.peer.clone(),
    ));
    if args.once {
        return once(&syncer, mode);
    }
    match serve_and_sync(&args, mode, local, book, syncer) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("with_sync: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--once`: one round, its summary on stdout.
fn once(syncer: &Syncer, mode: Mode) -> ExitCode {
    let (ok, line) = match syncer.round() {
        Ok(summary) if summary.failed == 0 => (true, render(&summary, mode)),
        Ok(summary) => {
            let error = format!(
                "{} action(s) failed; see {}",
                summary.failed,
                syncer.local().log.path().display()
            );
            let line = match mode {
                Mode::Json => {
                    serde_json::json!({"ok": false, "error": error, "sync": summary.json()})
                        .to_string()
                }
                Mode::Human => format!("{}\nerror: {error}", summary.text()),
            };
            (false, line)
        }
        Err(e) => {
            let message = e.to_string();
            // The background loop logs its failed rounds; a one-off round must too, or the
            // box's history would not say why nothing happened.
            syncer.local().log.record(
                &made(syncer.peer_addr()),
                "sync round",
                &format!("failed: {message}"),
            );
            let line = match mode {
                Mode::Json => output::error_json(&message).to_string(),
                Mode::Human => format!("error: {message}"),
            };
            (false, line)
        }
    };
    println!("{line}");
    // What the round cost, for whoever measures it (`RUST_LOG=with_sync::memory=info`).
    if let Some(peak) = minibox::util::peak_memory() {
        log::info!(target: "with_sync::memory", "peak memory {} KiB", peak / 1024);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Serves the box, syncs in the background, and runs the shell if stdin is a terminal.
fn serve_and_sync(
    args: &Args,
    mode: Mode,
    local: Arc<LocalBox>,
    book: Arc<Book>,
    syncer: Arc<Syncer>,
) -> minibox::Result<ExitCode> {
    let listen = args
        .listen
        .as_deref()
        .ok_or_else(|| minibox::Error::Usage("--listen is needed unless --once".into()))?;
    // Before the announce line: a signal sent as soon as we say we are ready must stop us
    // cleanly, not kill us.
    let signals = StopSignals::install()?;
    let (listener, udp) = bind(listen)?;
    // Our server tells the book what the peer saw of us (see with_sync::plan::fold).
    let config = ServerConfig {
        witness: Some(book),
        ..ServerConfig::default()
    };
    let server = Server::start(listener, udp, Arc::clone(&local), config)?;
    warn_if_exposed(server.addr(), local.secret());
    announce(local.root(), server.addr());
    let interactive = std::io::stdin().is_terminal();

    let notices = Arc::new(Notices::new());
    let live = Arc::new(Live::new(
        Arc::clone(&syncer),
        args.interval,
        Arc::clone(&notices),
    ));
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    let background = {
        let live = Arc::clone(&live);
        let reports = match (interactive, mode) {
            (false, mode) => Reports::Stdout(mode),
            (true, Mode::Human) => Reports::AbovePrompt,
            // The JSON shell prints one line per command, nothing else.
            (true, Mode::Json) => Reports::Nothing,
        };
        thread::Builder::new()
            .name("sync".into())
            .spawn(move || live.background(&stop_rx, reports))
            .map_err(|e| minibox::Error::io("sync thread", e))?
    };

    let status = if interactive {
        // The shell owns this thread and the terminal. Ctrl-C cancels a command; SIGTERM stops
        // the rounds (no half-written file stays under a real name), puts the terminal back as
        // it was, and exits.
        let interrupt = Arc::new(Interrupt::new());
        let cancelling = Arc::clone(&live);
        interrupt.on_cancel(move || cancelling.cancel_shell_round());
        let stopping = Arc::clone(&syncer);
        let _watch = SignalWatch::for_shell(signals, &interrupt, |_| 0, move || stopping.stop())?;
        Shell::new(syncer.peer_addr(), Arc::clone(&local), mode)
            .with_interrupt(interrupt)
            .with_stage(&*live)
            .with_notices(notices)
            .run()
    } else {
        // Runs until stopped.
        let _ = signals.receiver.recv();
        0
    };

    syncer.stop();
    let _ = stop_tx.send(());
    let _ = background.join();
    server.stop();
    log::info!("stopped");
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(1)))
}
