//! Stage 1 of 3: the interactive client.
//!
//! Reads shell commands (see `help`) and answers each from the server at `--peer`; downloads land
//! in `--dir`. All the work is in [`minibox::shell`], which the later stages reuse as it is.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use minibox::cli::init_logging;
use minibox::local::LocalBox;
use minibox::shell::{Mode, Shell};

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
    let mode = if args.json { Mode::Json } else { Mode::Human };
    let status = Shell::new(args.peer, local, mode).run();
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
