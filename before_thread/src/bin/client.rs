//! Stage 1 of 3: the interactive client.
//!
//! Reads shell commands (see `help`) and answers each from the server at `--peer`; downloads land
//! in `--dir`. All the work is in [`minibox::shell`], which the later stages reuse as it is.
//! One thing happens beside the shell: a small thread watches for signals, so that Ctrl-C on a
//! terminal cancels the running command, and SIGTERM stops the client cleanly
//! ([`minibox::shell::ctrl_c`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use minibox::cli::init_logging;
use minibox::local::LocalBox;
use minibox::shell::ctrl_c::SignalWatch;
use minibox::shell::{Mode, Shell};
use minibox::threaded::interrupt::Interrupt;
use minibox::threaded::signals::StopSignals;

/// Query and download from a minibox server (minibox stage 1).
#[derive(Parser, Debug)]
#[command(name = "client", version, about)]
struct Args {
    /// This box: where downloads land (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// The server to ask.
    #[arg(long, default_value = "127.0.0.1:60000")]
    peer: String,
    /// Print one line of JSON per command instead of tables.
    #[arg(long)]
    json: bool,
    /// Prove knowledge of the secret in FILE to the server, and demand the same of it.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Keep what goes to the trash N days (0: forever); older items are removed.
    #[arg(long, value_name = "N", default_value_t = minibox::local::trash::DEFAULT_DAYS)]
    trash_days: u64,
}

fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    let opened = LocalBox::from_args(&args.dir, None, args.secret_file.as_deref());
    let local = match opened {
        Ok(local) => Arc::new(local),
        Err(e) => {
            eprintln!("client: {e}");
            return ExitCode::FAILURE;
        }
    };
    local.trash.keep_days(args.trash_days);
    let interrupt = Arc::new(Interrupt::new());
    let watch = StopSignals::install()
        .and_then(|signals| SignalWatch::for_shell(signals, &interrupt, |s| 128 + s, || {}));
    if let Err(e) = &watch {
        log::warn!("Ctrl-C and SIGTERM will not be handled: {e}");
    }
    let mode = if args.json { Mode::Json } else { Mode::Human };
    let status = Shell::new(args.peer, local, mode)
        .with_interrupt(interrupt)
        .run();
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
