//! The shell's local commands about this box: `conflicts`, `trash list`, `trash restore PATH`.
//! They ask no peer; each answers with a table for people and the JSON shapes of the contract.

use serde_json::{json, Value};

use super::output::{human_size, Outcome};
use crate::local::conflicts::{self, ConflictCopy};
use crate::local::restore::restore;
use crate::local::trash::Trashed;
use crate::local::LocalBox;
use crate::protocol::error::{Error, Result};
use crate::protocol::timestamp::{local_display, rfc3339};

/// `conflicts`: the conflict copies in the box, each with the path it is a copy of.
///
/// # Errors
/// If the box cannot be scanned.
pub fn conflicts(local: &LocalBox) -> Result<Outcome> {
    let copies = conflicts::list(local).map_err(|e| Error::io(local.root(), e))?;
    let text = if copies.is_empty() {
        "no conflict copies".to_string()
    } else {
        let rows = copies.iter().map(|c| {
            let when = local_display(c.mtime_ns);
            vec![
                c.path.clone(),
                c.name.original.clone(),
                c.name.peer.clone(),
                when,
            ]
        });
        grid(
            &["CONFLICT COPY", "COPY OF", "PEER", "MODIFIED"],
            rows,
            None,
        )
    };
    let json: Vec<Value> = copies.iter().map(conflict_json).collect();
    Ok(Outcome::Report {
        key: "conflicts",
        text,
        json: json.into(),
    })
}

fn conflict_json(c: &ConflictCopy) -> Value {
    json!({
        "path": c.path,
        "original": c.name.original,
        "peer": c.name.peer,
        "mtime": rfc3339(c.mtime_ns),
    })
}

/// `trash list`: every file in the trash, newest first.
pub fn trash_list(local: &LocalBox) -> Outcome {
    let items = local.trash.list();
    let text = if items.is_empty() {
        "the trash is empty".to_string()
    } else {
        let rows = items.iter().map(|t| {
            vec![
                t.path.clone(),
                human_size(t.size),
                local_display(t.trashed_ns),
            ]
        });
        grid(&["PATH", "SIZE", "TRASHED"], rows, Some(1))
    };
    let json: Vec<Value> = items.iter().map(trashed_json).collect();
    Outcome::Report {
        key: "trash",
        text,
        json: json.into(),
    }
}

/// `trash restore PATH`.
///
/// # Errors
/// See [`restore`].
pub fn trash_restore(local: &LocalBox, path: &str) -> Result<Outcome> {
    let item = restore(local, path)?;
    let text = format!(
        "restored {} ({}, trashed {}); what was there is in the trash",
        item.path,
        human_size(item.size),
        local_display(item.trashed_ns)
    );
    Ok(Outcome::Report {
        key: "restored",
        text,
        json: trashed_json(&item),
    })
}

fn trashed_json(t: &Trashed) -> Value {
    json!({"path": t.path, "size": t.size, "trashed": rfc3339(t.trashed_ns)})
}

/// An aligned table: a header and rows, columns two spaces apart, the column `right` (if any)
/// aligned right.
fn grid(header: &[&str], rows: impl Iterator<Item = Vec<String>>, right: Option<usize>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows)
        .collect();
    let mut width = vec![0; header.len()];
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let lines: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells = row.iter().enumerate().map(|(i, cell)| {
                let pad = " ".repeat(width[i] - cell.chars().count());
                match (Some(i) == right, i + 1 == row.len()) {
                    (true, _) => format!("{pad}{cell}"),
                    (false, true) => cell.clone(),
                    (false, false) => format!("{cell}{pad}"),
                }
            });
            cells.collect::<Vec<_>>().join("  ")
        })
        .collect();
    lines.join("\n")
}
