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
use crossbeam_channel::{select, Receiver};
use minibox::cli::{announce, init_logging};
use minibox::local::LocalBox;
use minibox::shell::{output, Mode, Outcome, Shell};
use minibox::threaded::signals::StopSignals;
use minibox::threaded::{Server, ServerConfig};
use minibox::wire::listen::{bind, warn_if_exposed};
use with_sync::round::summary::Summary;
use with_sync::round::Syncer;
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
    init_logging();
    let args = Args::parse();
    let mode = if args.json { Mode::Json } else { Mode::Human };
    let opened = LocalBox::from_args(&args.dir, args.name.as_deref(), args.secret_file.as_deref());
    let local = match opened {
        Ok(local) => Arc::new(local),
        Err(e) => {
            eprintln!("with_sync: {e}");
            return ExitCode::FAILURE;
        }
    };
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
                syncer.peer_addr(),
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

/// A round's summary as the shell prints it.
fn render(summary: &Summary, mode: Mode) -> String {
    let outcome = Outcome::Synced {
        text: summary.text(),
        json: summary.json(),
    };
    match mode {
        Mode::Json => output::to_json(&outcome).map(|v| v.to_string()),
        Mode::Human => output::to_text(&outcome),
    }
    .unwrap_or_default()
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

    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    let background = {
        let syncer = Arc::clone(&syncer);
        let interval = args.interval;
        thread::Builder::new()
            .name("sync".into())
            .spawn(move || background(&syncer, interval, &stop_rx, (!interactive).then_some(mode)))
            .map_err(|e| minibox::Error::io("sync thread", e))?
    };

    let status = if interactive {
        // The shell owns this thread and the terminal; a signal cannot interrupt its read, so
        // a watcher stops the sync (no half-written file stays under a real name) and exits.
        // (The line editor does not get to restore the terminal then; `reset` does.)
        let watcher_syncer = Arc::clone(&syncer);
        let stop = signals.receiver.clone();
        thread::Builder::new()
            .name("signals-watch".into())
            .spawn(move || {
                if stop.recv().is_ok() {
                    watcher_syncer.stop();
                    std::process::exit(0);
                }
            })
            .map_err(|e| minibox::Error::io("signal thread", e))?;
        let mut hook = || {
            syncer.round().map(|s| Outcome::Synced {
                text: s.text(),
                json: s.json(),
            })
        };
        Shell::new(syncer.peer_addr(), Arc::clone(&local), mode)
            .with_sync(&mut hook)
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

/// The background loop: a round now, then one per tick, until `stop`. With `print`, a round
/// that changed something prints its summary on stdout.
fn background(syncer: &Syncer, interval: Duration, stop: &Receiver<()>, print: Option<Mode>) {
    let ticker = crossbeam_channel::tick(interval);
    let mut failing: Option<String> = None;
    loop {
        match syncer.round() {
            Ok(summary) => {
                if failing.take().is_some() {
                    syncer.local().log.record(
                        syncer.peer_addr(),
                        "sync round",
                        "ok: the peer is back",
                    );
                }
                if let Some(mode) = print.filter(|_| summary.changed()) {
                    println!("{}", render(&summary, mode));
                }
            }
            Err(_) if syncer.stopped() => break,
            Err(e) => {
                // Log a failure once, not on every tick while the peer stays down.
                let message = e.to_string();
                if failing.as_deref() != Some(message.as_str()) {
                    log::warn!("sync with {} failed: {message}", syncer.peer_addr());
                    syncer.local().log.record(
                        syncer.peer_addr(),
                        "sync round",
                        &format!("failed: {message} (retrying every {interval:?})"),
                    );
                    failing = Some(message);
                }
            }
        }
        select! {
            recv(stop) -> _ => break,
            recv(ticker) -> _ => {}
        }
    }
}
