//! What the shell prints: aligned tables for people, one line of JSON per command for programs.
//!
//! The JSON shapes are part of the product contract (scripts and the acceptance checks read them),
//! so they are built here in one place from the same [`Outcome`] the tables come from.

use serde_json::{json, Value};

use super::grammar::{Transport, HELP};
use crate::protocol::message::Entry;
use crate::protocol::timestamp;

/// What a successful command produced.
#[derive(Debug)]
pub enum Outcome {
    /// A listing (`index …`, `hash checkall`); `hashes` says whether MD5s are shown.
    Files {
        /// The files, in the order to show.
        files: Vec<Entry>,
        /// Show the MD5 column.
        hashes: bool,
    },
    /// One file's hash (`hash verify`).
    Hash(Entry),
    /// A verified download.
    Downloaded {
        /// The installed file, with its MD5.
        entry: Entry,
        /// How it travelled.
        transport: Transport,
    },
    /// A sync round's summary: a sentence for people and a JSON value for programs.
    Synced {
        /// For the table mode.
        text: String,
        /// For `--json`, under the key `"sync"`.
        json: Value,
    },
    /// Any other answer that comes ready-made: text for people, and a JSON value that goes
    /// under `key` (`conflicts`, `trash`, `restored`, `status`).
    Report {
        /// The JSON line's key beside `"ok"`.
        key: &'static str,
        /// For the table mode.
        text: String,
        /// For `--json`.
        json: Value,
    },
    /// `help`.
    Help,
    /// `quit`: prints nothing.
    Quit,
}

/// Sizes as people read them: `999 B`, `1.5 KiB`, `3.0 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// One file as the JSON output shows it.
pub fn file_json(entry: &Entry, with_md5: bool) -> Value {
    let mut v = json!({
        "path": entry.path,
        "size": entry.size,
        "mtime": timestamp::rfc3339(entry.mtime_ns),
        "type": entry.mime,
    });
    if with_md5 {
        v["md5"] = json!(entry.md5.as_deref().unwrap_or(""));
    }
    v
}

/// The JSON line for a success.
pub fn to_json(outcome: &Outcome) -> Option<Value> {
    Some(match outcome {
        Outcome::Files { files, hashes } => json!({
            "ok": true,
            "files": files.iter().map(|e| file_json(e, *hashes)).collect::<Vec<_>>(),
        }),
        Outcome::Hash(entry) => json!({"ok": true, "files": [file_json(entry, true)]}),
        Outcome::Downloaded { entry, transport } => json!({
            "ok": true,
            "file": {
                "path": entry.path,
                "size": entry.size,
                "mtime": timestamp::rfc3339(entry.mtime_ns),
                "md5": entry.md5.as_deref().unwrap_or(""),
            },
            "verified": true,
            "transport": transport.as_str(),
        }),
        Outcome::Synced { json, .. } => json!({"ok": true, "sync": json}),
        Outcome::Report { key, json, .. } => {
            let mut line = json!({"ok": true});
            line[*key] = json.clone();
            line
        }
        Outcome::Help => json!({"ok": true, "help": HELP}),
        Outcome::Quit => return None,
    })
}

/// The JSON line for a failure.
pub fn error_json(message: &str) -> Value {
    json!({"ok": false, "error": message})
}

/// The text for people.
pub fn to_text(outcome: &Outcome) -> Option<String> {
    Some(match outcome {
        Outcome::Files { files, hashes } => {
            if files.is_empty() {
                "no files".to_string()
            } else {
                table(files, *hashes)
            }
        }
        Outcome::Hash(entry) => table(std::slice::from_ref(entry), true),
        Outcome::Downloaded { entry, transport } => format!(
            "{}\nverified: MD5 matches the other box's, received over {}",
            table(std::slice::from_ref(entry), true),
            transport.as_str().to_ascii_uppercase()
        ),
        Outcome::Synced { text, .. } | Outcome::Report { text, .. } => text.clone(),
        Outcome::Help => HELP.to_string(),
        Outcome::Quit => return None,
    })
}

/// An aligned table: PATH, SIZE (right-aligned), MODIFIED (local time), TYPE, and MD5 if asked.
fn table(files: &[Entry], hashes: bool) -> String {
    let rows: Vec<[String; 5]> = files
        .iter()
        .map(|e| {
            [
                e.path.clone(),
                human_size(e.size),
                timestamp::local_display(e.mtime_ns),
                e.mime.clone(),
                e.md5.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["PATH", "SIZE", "MODIFIED", "TYPE", "MD5"];
    let columns = if hashes { 5 } else { 4 };
    let mut width = [0usize; 5];
    for row in rows
        .iter()
        .chain(std::iter::once(&header.map(String::from)))
    {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String; 5], out: &mut String| {
        for (i, cell) in cells.iter().enumerate().take(columns) {
            let pad = width[i] - cell.chars().count();
            if i == 1 {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i + 1 < columns {
                    out.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < columns {
                out.push_str("  ");
            }
        }
        out.push('\n');
    };
    line(&header.map(String::from), &mut out);
    for row in &rows {
        line(row, &mut out);
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests;
