//! The chapters' shell transcripts, checked against real boxes.
//!
//! A chapter shows sessions in fenced `text` blocks: lines starting with `$ ` are commands for
//! bash, lines starting with `>> ` are commands typed at a minibox shell, and the lines after each
//! are what it printed. [`blocks`] finds every such block (a block without a `$ ` or `>> ` line is
//! not a transcript); a chapter's test runs each step against real boxes, in order, and
//! [`Checker`] compares what came out with what the chapter shows.
//!
//! What differs from run to run is put in placeholders on both sides before comparing:
//! times and dates, trash and conflict stamps, the `[HH:MM:SS]` of a round's line, MD5s of
//! random data (every MD5 that is not the MD5 of a file in the boxes with a name other than
//! `random…`), the folder the boxes live in (`…/boxes/`), and ports (the test's own are put back
//! to the chapter's). A line `...` in the chapter stands for any number of lines.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;

/// How a step is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// `$ `: a command for bash.
    Bash,
    /// `>> `: a command at a minibox shell.
    Shell,
}

/// One command of a transcript and what the chapter says it prints.
#[derive(Debug, Clone)]
pub struct Step {
    /// The chapter's line number of the command (1-based).
    pub line: usize,
    /// Bash or the shell.
    pub prompt: Prompt,
    /// The command, without its prompt.
    pub input: String,
    /// The lines the chapter shows after it.
    pub expected: Vec<String>,
}

/// One fenced block with at least one command.
#[derive(Debug, Clone)]
pub struct Block {
    /// The chapter's line number of the opening fence.
    pub line: usize,
    /// Its commands, in order.
    pub steps: Vec<Step>,
}

/// Every transcript in `markdown`, in order.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<(usize, Vec<(usize, &str)>)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) if matches!(line.trim(), "```text" | "```console") => {
                current = Some((i + 1, Vec::new()));
            }
            (Some(_), true) => {
                if let Some((at, lines)) = current.take() {
                    out.extend(block(at, &lines));
                }
            }
            (Some((_, lines)), false) => lines.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// The steps of one block's lines; `None` if it has no command.
fn block(at: usize, lines: &[(usize, &str)]) -> Option<Block> {
    let mut steps: Vec<Step> = Vec::new();
    for &(n, line) in lines {
        let command = [("$ ", Prompt::Bash), (">> ", Prompt::Shell)]
            .into_iter()
            .find_map(|(p, kind)| line.strip_prefix(p).map(|rest| (kind, rest)));
        match (command, steps.last_mut()) {
            (Some((prompt, input)), _) => steps.push(Step {
                line: n,
                prompt,
                input: input.to_string(),
                expected: Vec::new(),
            }),
            (None, Some(step)) => step.expected.push(line.to_string()),
            (None, None) => {}
        }
    }
    (!steps.is_empty()).then_some(Block { line: at, steps })
}

/// Runs a bash command in `cwd` with `env`, stdout and stderr together; `status` is `$?` for
/// it (the status of the step before). Returns the output and the new status.
///
/// # Panics
/// If bash cannot be started or the command outlives `limit`.
pub fn bash(
    cwd: &Path,
    env: &[(String, String)],
    command: &str,
    status: i32,
    limit: Duration,
) -> (String, i32) {
    let script = format!("(exit {status}); {{ {command}\n}} 2>&1");
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("bash runs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(Ok(output)) = rx.recv_timeout(limit) else {
        crate::signal(pid, "KILL");
        panic!("`{command}` did not finish within {limit:?}");
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (text, output.status.code().unwrap_or(128))
}

/// Compares what steps printed with what a chapter shows, after placeholders.
pub struct Checker {
    /// The chapter, for messages.
    chapter: PathBuf,
    /// Where the boxes are (their files' MD5s are kept as they are).
    boxes: PathBuf,
    /// (the test's port, the chapter's port).
    ports: Vec<(u16, u16)>,
    /// The mismatches so far.
    failures: Vec<String>,
}

impl Checker {
    /// A checker for `chapter`, whose boxes live in `boxes`.
    pub fn new(chapter: &Path, boxes: &Path) -> Self {
        Checker {
            chapter: chapter.to_path_buf(),
            boxes: boxes.to_path_buf(),
            ports: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Output shows `actual` where the chapter shows `doc`.
    pub fn port(&mut self, actual: u16, doc: u16) {
        self.ports.push((actual, doc));
    }

    /// The chapter's command with the test's ports in place of its own.
    pub fn command(&self, input: &str) -> String {
        self.ports.iter().fold(input.to_string(), |s, (a, d)| {
            s.replace(&format!("127.0.0.1:{d}"), &format!("127.0.0.1:{a}"))
        })
    }

    /// Compares one step's output with the chapter.
    pub fn step(&mut self, step: &Step, output: &str) {
        let actual = self.ports.iter().fold(output.to_string(), |s, (a, d)| {
            s.replace(&format!("127.0.0.1:{a}"), &format!("127.0.0.1:{d}"))
        });
        let known = known_md5s(&self.boxes);
        let norm = |text: &str| normalize(text, &known);
        let expected: Vec<String> = step.expected.iter().map(|l| norm(l)).collect();
        let actual: Vec<String> = actual.lines().map(norm).collect();
        if !matches(&expected, &actual) {
            self.failures.push(format!(
                "{}:{}: `{}`\n--- the chapter shows:\n{}\n--- it printed:\n{}\n",
                self.chapter.display(),
                step.line,
                step.input,
                expected.join("\n"),
                actual.join("\n")
            ));
        }
    }

    /// Panics with every mismatch, if there was one.
    ///
    /// # Panics
    /// When a step printed something else than the chapter shows.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} step(s) of {} print something else than the chapter shows:\n\n{}",
            self.failures.len(),
            self.chapter.display(),
            self.failures.join("\n")
        );
    }
}

/// Whether `actual` fits `expected`, where a line `...` stands for any number of lines.
pub fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| a == first && matches(rest, more)),
    }
}

/// MD5s of every file below `boxes` (trash included) but those named `random…` and big ones
/// (a chapter's 4 GiB example file is not worth reading after every step).
fn known_md5s(boxes: &Path) -> BTreeSet<String> {
    crate::files_under(boxes)
        .into_iter()
        .filter(|rel| {
            let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
            !name.unwrap_or_default().starts_with("random") && !rel.ends_with("log")
        })
        .filter(|rel| fs::metadata(boxes.join(rel)).is_ok_and(|m| m.len() <= 1 << 20))
        .filter_map(|rel| fs::read(boxes.join(rel)).ok())
        .map(|bytes| minibox::protocol::md5::Md5::of(&bytes).to_string())
        .collect()
}

/// One line with its placeholders.
fn normalize(line: &str, known: &BTreeSet<String>) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"\d{8}T\d{6}\.\d{9}Z", "<STAMP>"),
            (r"\d{8}-\d{6}", "<STAMP>"),
            (
                r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?",
                "<TIME>",
            ),
            (r"\[\d{2}:\d{2}:\d{2}\]", "[<CLOCK>]"),
            (r"(/[^\s/'\x22]+)+/boxes/", "<ROOT>/boxes/"),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(re).expect("a valid pattern"), to))
        .collect()
    });
    static MD5: OnceLock<Regex> = OnceLock::new();
    let md5 = MD5.get_or_init(|| Regex::new(r"\b[0-9a-f]{32}\b").expect("a valid pattern"));
    let mut text = md5
        .replace_all(line, |c: &regex::Captures<'_>| {
            match known.contains(&c[0]) {
                true => c[0].to_string(),
                false => "<MD5>".to_string(),
            }
        })
        .into_owned();
    for (re, to) in rules {
        text = re.replace_all(&text, *to).into_owned();
    }
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_steps_and_wildcards() {
        let md = "x\n```text\n$ ls\na\n...\n>> help\nb\n```\n```sh\n$ not a transcript\n```\n```text\nno command\n```\n";
        let found = blocks(md);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
        let steps = &found[0].steps;
        assert_eq!((steps[0].input.as_str(), steps[0].line), ("ls", 3));
        assert_eq!(steps[0].expected, ["a", "..."]);
        assert_eq!(steps[1].prompt, Prompt::Shell);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(matches(&s(&["a", "..."]), &s(&["a", "b", "c"])));
        assert!(matches(&s(&["...", "c"]), &s(&["a", "b", "c"])));
        assert!(!matches(&s(&["a", "c"]), &s(&["a", "b", "c"])));
    }

    #[test]
    fn what_varies_becomes_a_placeholder() {
        let known = BTreeSet::from(["a9009511907db87433a6fa46c1c3345c".to_string()]);
        let n = |l: &str| normalize(l, &known);
        assert_eq!(
            n("hello.txt  18 B  2026-11-25 09:57:35  text/plain  a9009511907db87433a6fa46c1c3345c"),
            "hello.txt  18 B  <TIME>  text/plain  a9009511907db87433a6fa46c1c3345c"
        );
        assert_eq!(n("x 62286c4d73dfc8aef2494fec3402eaa4"), "x <MD5>");
        assert_eq!(
            n("serving /tmp/x/boxes/1 on .minibox/trash/20261125T100159.888915940Z/a"),
            "serving <ROOT>/boxes/1 on .minibox/trash/<STAMP>/a"
        );
        assert_eq!(
            n("a.conflict-box1-20261125-101500.txt  "),
            "a.conflict-box1-<STAMP>.txt"
        );
    }
}
