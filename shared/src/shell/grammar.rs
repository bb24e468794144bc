//! The shell's grammar: how a typed line becomes a [`Command`].
//!
//! Tokens split on white space; double quotes group a token (`download TCP "my file.txt"`), and
//! inside quotes `\"` stands for a quote. Keywords and flags are case-insensitive; file names and
//! patterns are not. Parsing is a pure function of the line and the current time (for
//! `shortlist`'s defaults), so it is tested without sockets or clocks.

use crate::local::filter::compile;
use crate::protocol::message::Filter;
use crate::protocol::timestamp;

/// How a file travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Over the TCP connection itself.
    Tcp,
    /// Over UDP datagrams, with the TCP connection for control.
    Udp,
}

impl Transport {
    /// `"tcp"` or `"udp"`, as the JSON output names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// One shell command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `index longlist | shortlist | regex`: list the other box.
    Index(Filter),
    /// `hash verify FILE`.
    HashVerify(String),
    /// `hash checkall`.
    HashCheckall,
    /// `download TCP|UDP FILE`.
    Download(Transport, String),
    /// `sync` (with_sync only).
    Sync,
    /// `status` (with_sync only).
    Status,
    /// `conflicts`: the conflict copies in this box.
    Conflicts,
    /// `trash list`.
    TrashList,
    /// `trash restore PATH`.
    TrashRestore(String),
    /// `help`.
    Help,
    /// `quit` / `exit`.
    Quit,
}

/// The text `help` prints.
pub const HELP: &str = "\
commands (answered by the other box unless marked local):
  index longlist                  every file: path, size, last-modified time, type
  index shortlist [START [END]]   files modified in [START, END] (default: the last 24 h)
  index regex PATTERN             files whose path matches PATTERN (e.g. \\.txt$)
  hash verify FILE                path, MD5 and last-modified time of one file
  hash checkall                   the same for every file
  download TCP FILE               fetch FILE into this box over TCP, verified by MD5
  download UDP FILE               the same over UDP
  conflicts                       the conflict copies in this box (local)
  trash list                      what this box's trash holds, newest first (local)
  trash restore PATH              put the newest trashed version of PATH back (local)
  sync                            run one sync round now (with_sync only)
  status                          the peer, the last round, the next one (with_sync only)
  help                            this text (local)
  quit | exit                     leave (local); Ctrl-C cancels a running command
timestamps: 2026-11-25, \"2026-11-25 10:00:00\", 2026-11-25T10:00:00Z, 2026/11/25/10/00, @1764064800
names with spaces go in double quotes: download TCP \"my file.txt\"";

/// Splits a line into tokens.
///
/// # Errors
/// An unterminated quote.
pub fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        None => return Err("a double quote is not closed".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('"') => current.push('"'),
                            Some(other) => {
                                current.push('\\');
                                current.push(other);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(other) => current.push(other),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            c => {
                in_token = true;
                current.push(c);
            }
        }
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

/// Parses one line. `Ok(None)` for a blank line. `now_ns` gives `shortlist` its defaults.
///
/// # Errors
/// One sentence saying what is wrong and what was expected.
pub fn parse(line: &str, now_ns: i64) -> Result<Option<Command>, String> {
    parse_with(line, now_ns, timestamp::parse)
}

/// [`parse`] with the timestamp parser given (tests pass one fixed to UTC).
///
/// # Errors
/// As [`parse`].
pub fn parse_with(
    line: &str,
    now_ns: i64,
    parse_time: impl Fn(&str) -> Result<i64, String>,
) -> Result<Option<Command>, String> {
    let tokens = tokenize(line)?;
    let Some((first, rest)) = tokens.split_first() else {
        return Ok(None);
    };
    let args = Args(rest);
    let command = match first.to_ascii_lowercase().as_str() {
        "index" => index(&args, now_ns, &parse_time)?,
        "hash" => hash(&args)?,
        "download" => download(&args)?,
        "sync" => args.exactly(0, "sync", Command::Sync)?,
        "status" => args.exactly(0, "status", Command::Status)?,
        "conflicts" => args.exactly(0, "conflicts", Command::Conflicts)?,
        "trash" => trash(&args)?,
        "help" | "?" => Command::Help,
        "quit" | "exit" => Command::Quit,
        other => {
            return Err(format!(
                "unknown command \"{other}\"; type help for the list"
            ))
        }
    };
    Ok(Some(command))
}

/// The tokens after a command's name.
struct Args<'t>(&'t [String]);

impl Args<'_> {
    /// Token `i`, lower-cased (keywords and flags are case-insensitive).
    fn word(&self, i: usize) -> Option<String> {
        self.0.get(i).map(|s| s.to_ascii_lowercase())
    }

    /// `command` if there are exactly `n` tokens, else the usage.
    fn exactly(&self, n: usize, usage: &str, command: Command) -> Result<Command, String> {
        match self.0.len() == n {
            true => Ok(command),
            false => Err(format!("usage: {usage}")),
        }
    }
}

/// `index longlist | shortlist [START [END]] | regex PATTERN`.
fn index(
    args: &Args<'_>,
    now_ns: i64,
    parse_time: &impl Fn(&str) -> Result<i64, String>,
) -> Result<Command, String> {
    let rest = args.0;
    match args.word(0).as_deref() {
        Some("longlist") => args.exactly(1, "index longlist", Command::Index(Filter::All)),
        Some("shortlist") => {
            if rest.len() > 3 {
                return Err("usage: index shortlist [START [END]]".into());
            }
            let end_ns = rest.get(2).map_or(Ok(now_ns), |t| parse_time(t))?;
            let start_ns = rest
                .get(1)
                .map_or(Ok(end_ns.saturating_sub(DAY_NS)), |t| parse_time(t))?;
            if start_ns > end_ns {
                return Err("the start of the range is after its end".into());
            }
            Ok(Command::Index(Filter::Modified { start_ns, end_ns }))
        }
        Some("regex") => {
            let pattern = rest.get(1).cloned().unwrap_or_default();
            let command = args.exactly(
                2,
                "index regex PATTERN",
                Command::Index(Filter::Regex {
                    pattern: pattern.clone(),
                }),
            )?;
            compile(&pattern)?;
            Ok(command)
        }
        _ => Err("usage: index longlist | shortlist [START [END]] | regex PATTERN".into()),
    }
}

/// `hash verify FILE | checkall`.
fn hash(args: &Args<'_>) -> Result<Command, String> {
    match args.word(0).as_deref() {
        Some("verify") => {
            let file = args.0.get(1).cloned().unwrap_or_default();
            args.exactly(2, "hash verify FILE", Command::HashVerify(file))
        }
        Some("checkall") => args.exactly(1, "hash checkall", Command::HashCheckall),
        _ => Err("usage: hash verify FILE | checkall".into()),
    }
}

/// `trash list | restore PATH`.
fn trash(args: &Args<'_>) -> Result<Command, String> {
    match args.word(0).as_deref() {
        Some("list") => args.exactly(1, "trash list", Command::TrashList),
        Some("restore") => {
            let path = args.0.get(1).cloned().unwrap_or_default();
            args.exactly(2, "trash restore PATH", Command::TrashRestore(path))
        }
        _ => Err("usage: trash list | restore PATH".into()),
    }
}

/// `download TCP|UDP FILE`.
fn download(args: &Args<'_>) -> Result<Command, String> {
    let transport = match args.word(0).as_deref() {
        Some("tcp") => Transport::Tcp,
        Some("udp") => Transport::Udp,
        _ => return Err("usage: download TCP|UDP FILE".into()),
    };
    let file = args.0.get(1).cloned().unwrap_or_default();
    args.exactly(
        2,
        "download TCP|UDP FILE",
        Command::Download(transport, file),
    )
}

#[cfg(test)]
mod tests;
