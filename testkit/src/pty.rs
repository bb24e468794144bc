//! Ctrl-C and SIGTERM as a person at a terminal meets them, for every interactive binary.
//!
//! [`ctrl_c_cancels_a_download`] types `download TCP FILE` at the prompt of a shell running on a
//! pseudo-terminal ([`Terminal`]), freezes the *sending* box (SIGSTOP) once the download's
//! temporary file has its first bytes (so the download is certainly in the middle), presses ^C,
//! and checks that the command was cancelled: a `cancelled` error, the prompt back, nothing under
//! the real name, no temporary file, and the next command works.
//!
//! [`sigterm_leaves_the_terminal_as_it_was`] runs the binary under `sh -c 'stty -g; BIN…;
//! stty -g'` on a terminal, sends SIGTERM while it waits at its prompt (where the line editor
//! has the terminal in raw mode), and compares the two `stty -g` lines.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::{files_under, freeze_mid_download, signal, wait_until, Terminal};

/// A generous bound for each step on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

/// The process whose command line holds `bin`'s file name and `needle`; `None` if none runs.
pub fn pid_of(bin: &str, needle: &str) -> Option<u32> {
    let name = Path::new(bin).file_name()?.to_str()?.to_string();
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(e.path().join("cmdline")).ok()?;
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let first = text.split(' ').next()?;
        (first.ends_with(&name) && text.contains(needle)).then_some(pid)
    })
}

/// What [`ctrl_c_cancels_a_download`] needs.
pub struct Download<'a> {
    /// The interactive binary and its arguments (its box is `into`).
    pub bin: &'a str,
    /// Its arguments.
    pub args: &'a [&'a str],
    /// The box downloads land in.
    pub into: &'a Path,
    /// The process sending the file (frozen mid-download).
    pub sender: u32,
    /// The file's name, and its size (far larger than the socket buffers).
    pub file: &'a str,
    /// Its size.
    pub size: u64,
    /// Run once the prompt is up, before the download is typed (makes the file, say).
    pub prepare: &'a dyn Fn(),
}

/// ^C in the middle of a download: see the module docs.
///
/// # Panics
/// When any of it goes otherwise.
pub fn ctrl_c_cancels_a_download(d: &Download<'_>) {
    let mut term = Terminal::start(d.bin, d.args, &[("TZ", "UTC")]);
    assert!(
        term.wait_for(">> ", 1, WAIT),
        "no prompt:\n{}",
        term.shown()
    );
    (d.prepare)();
    term.type_keys(&format!("download TCP {}\r", d.file));
    let frozen = freeze_mid_download(d.sender, d.into, d.size, WAIT, || true);
    assert!(
        frozen,
        "could not catch the download midway:\n{}",
        term.shown()
    );
    term.type_keys("\x03");
    let cancelled = term.wait_for("cancelled: download tcp", 1, WAIT);
    signal(d.sender, "CONT");
    assert!(
        cancelled,
        "^C did not cancel the download:\n{}",
        term.shown()
    );
    assert!(
        term.wait_for(">> ", 2, WAIT),
        "no prompt after ^C:\n{}",
        term.shown()
    );
    assert!(!d.into.join(d.file).exists(), "nothing under the real name");
    let leftovers = || {
        files_under(&d.into.join(".minibox/tmp"))
            .iter()
            .any(|f| f.extension().is_some_and(|x| x == "part"))
    };
    assert!(
        wait_until(Duration::from_secs(10), || !leftovers()),
        "a temporary file is left"
    );
    // The next command works, and Ctrl-C at the prompt only clears the line.
    term.type_keys("half a line\x03");
    assert!(term.wait_for(">> ", 3, WAIT), "{}", term.shown());
    term.type_keys("trash list\r");
    assert!(
        term.wait_for("the trash is empty", 1, WAIT),
        "{}",
        term.shown()
    );
    assert!(term.wait_for(">> ", 4, WAIT), "{}", term.shown());
    term.type_keys("quit\r");
    let status = term.wait_exit(WAIT);
    let shown = term.shown().to_string();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{shown}");
    assert!(
        !shown.contains("unknown command \"half"),
        "^C cleared the line: {shown}"
    );
}

/// SIGTERM at the prompt: see the module docs. `needle` picks the process out by a word of its
/// command line (its box folder); `ready` is a text it shows once it waits at its prompt.
///
/// # Panics
/// When the terminal's modes differ, or the binary does not stop.
pub fn sigterm_leaves_the_terminal_as_it_was(bin: &str, args: &[&str], needle: &str, ready: &str) {
    let tmp = crate::tempdir();
    let (before, after) = (tmp.path().join("before"), tmp.path().join("after"));
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command: Vec<String> = std::iter::once(bin)
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let script = format!(
        "stty -g > {}; {}; echo \"exit status $?\"; stty -g > {}",
        quote(&before.to_string_lossy()),
        command.join(" "),
        quote(&after.to_string_lossy())
    );
    let mut term = Terminal::start("sh", &["-c", &script], &[("TZ", "UTC")]);
    assert!(
        term.wait_for(ready, 1, WAIT),
        "not ready:\n{}",
        term.shown()
    );
    assert!(
        term.wait_for(">> ", 1, WAIT),
        "no prompt:\n{}",
        term.shown()
    );
    let pid = pid_of(bin, needle).unwrap_or_else(|| panic!("{bin} is not running"));
    signal(pid, "TERM");
    assert!(term.wait_for("exit status", 1, WAIT), "{}", term.shown());
    term.wait_exit(WAIT);
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    assert!(!read(&before).trim().is_empty(), "{}", term.shown());
    assert_eq!(
        read(&after),
        read(&before),
        "the terminal's modes:\n{}",
        term.shown()
    );
}
