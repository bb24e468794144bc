//! Stage 1 of 3: the blocking server.
//!
//! The simplest server that works: one loop that accepts a connection, serves it to the end,
//! and only then accepts the next. Meanwhile the others wait in the kernel's accept queue. That
//! is the lesson of this stage, and its limit: a client that connects and says nothing would hold
//! everybody up, so a connection that says no hello within 3 s is dropped, and every connection
//! after 10 s of silence. Stage 2 gives each
//! connection a thread. What a connection needs is in [`minibox::serve`], shared by every stage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use minibox::cli::{announce, init_logging};
use minibox::local::LocalBox;
use minibox::protocol::limits::HELLO_TIME;
use minibox::serve::{serve_connection, Options};
use minibox::wire::listen::{bind, warn_if_exposed};
use minibox::wire::Connection;

/// Serve a box to one client at a time (minibox stage 1).
#[derive(Parser, Debug)]
#[command(name = "server", version, about)]
struct Args {
    /// The box: the folder served (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Where to listen, TCP and UDP on the same port.
    #[arg(long, default_value = "127.0.0.1:60000")]
    listen: String,
    /// Only serve peers that prove they know the secret in FILE (the same file on both sides).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> minibox::Result<()> {
    let local = LocalBox::from_args(&args.dir, None, args.secret_file.as_deref())?;
    // Listed again and again: keep the box's scan while nothing in it changes.
    local.keep_scans();
    let (listener, udp) = bind(&args.listen)?;
    let addr = listener
        .local_addr()
        .map_err(|e| minibox::Error::net("reading the bound address", e))?;
    warn_if_exposed(addr, local.secret());
    announce(local.root(), addr);
    let opts = Options {
        udp: Some(&udp),
        witness: None,
        // An honest client says hello as it connects; one that says nothing for a few seconds
        // is let go, so that a handful of silent connections cannot keep the clients queued
        // behind them waiting until they give up (see the chapter, "The limit").
        hello_within: Some(HELLO_TIME),
    };
    // One client at a time: the next accept happens only when this one is done.
    for stream in listener.incoming() {
        match stream
            .map_err(|e| minibox::Error::net("accepting", e))
            .and_then(Connection::new)
        {
            Ok(conn) => serve_connection(conn, &local, opts),
            Err(e) => log::warn!("{e}"),
        }
    }
    Ok(())
}
