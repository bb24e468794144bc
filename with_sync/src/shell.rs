//! Stage 3: the rounds as a person at the shell sees them.
//!
//! [`Live`] runs the rounds (the background loop, and the shell's `sync`) and remembers the last
//! one, so that `status` can say how it went and when the next one comes. A round that changed
//! something says so in one line above the prompt ([`minibox::shell::notices`]), without
//! breaking what is being typed; a conflict copy that appeared gets a line of its own, on both
//! sides (the box whose version lost made it, the other downloaded it). A peer that cannot be
//! reached is said once, when that changes, not every round.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use minibox::local::conflicts::{self, ConflictCopy};
use minibox::local::log::made;
use minibox::protocol::error::Result;
use minibox::protocol::timestamp;
use minibox::shell::notices::Notices;
use minibox::shell::{output, Mode, Outcome, StageCommands};
use minibox::util::lock;
use serde_json::json;

use crate::round::summary::Summary;
use crate::round::Syncer;

/// Where the background loop reports a round that changed something.
#[derive(Debug, Clone, Copy)]
pub enum Reports {
    /// No terminal: its summary on stdout, as text or JSON.
    Stdout(Mode),
    /// The interactive shell: a line above the prompt.
    AbovePrompt,
    /// Nowhere (the JSON shell prints only its commands' answers).
    Nothing,
}

/// How the last round went.
struct Last {
    /// When it ended, ns since the epoch.
    at_ns: i64,
    /// Its summary, or why it failed.
    result: std::result::Result<Summary, String>,
}

/// The rounds of one box against its peer, and what the shell shows of them.
pub struct Live {
    /// Runs the rounds.
    syncer: Arc<Syncer>,
    /// Time between background rounds.
    interval: Duration,
    /// Where round reports go: above the prompt, or stdout.
    notices: Arc<Notices>,
    /// The last round, once there was one.
    last: Mutex<Option<Last>>,
    /// When the background loop runs its next round.
    next: Mutex<Option<Instant>>,
    /// The conflict copies in the box after the last round (new ones are told).
    copies: Mutex<BTreeSet<String>>,
    /// Whether the shell's `sync` is running a round (Ctrl-C then cuts it short).
    shell_round: AtomicBool,
}

impl Live {
    /// Rounds of `syncer` every `interval`, reported through `notices`.
    pub fn new(syncer: Arc<Syncer>, interval: Duration, notices: Arc<Notices>) -> Self {
        let copies = Self::copies_in(&syncer)
            .into_iter()
            .map(|c| c.path)
            .collect();
        Live {
            syncer,
            interval,
            notices,
            last: Mutex::new(None),
            next: Mutex::new(None),
            copies: Mutex::new(copies),
            shell_round: AtomicBool::new(false),
        }
    }

    /// Ctrl-C while the shell's `sync` runs: its round ends at once (nothing half-installed;
    /// the rest comes next round). Does nothing to the background loop's rounds.
    pub fn cancel_shell_round(&self) {
        if self.shell_round.load(Ordering::SeqCst) {
            self.syncer.cancel();
        }
    }

    fn copies_in(syncer: &Syncer) -> Vec<ConflictCopy> {
        conflicts::list(syncer.local()).unwrap_or_default()
    }

    /// A line for each conflict copy that appeared since the last look.
    fn new_copies(&self) -> Vec<String> {
        let now = Self::copies_in(&self.syncer);
        let mut known = lock(&self.copies);
        let lines = now
            .iter()
            .filter(|c| !known.contains(&c.path))
            .map(|c| {
                let (original, peer) = (&c.name.original, &c.name.peer);
                format!(
                    "  !! conflict: {original} changed in both boxes; {peer}'s version is kept as {} (type conflicts)",
                    c.path
                )
            })
            .collect();
        *known = now.into_iter().map(|c| c.path).collect();
        lines
    }

    /// Runs one round and remembers how it went. `Err` carries the sentence of the failure.
    fn round(&self) -> std::result::Result<Summary, String> {
        self.syncer.local().trash.expire_daily();
        let result = self.syncer.round().map_err(|e| e.to_string());
        *lock(&self.last) = Some(Last {
            at_ns: timestamp::now_ns(),
            result: result.clone(),
        });
        result
    }

    /// The background loop: a round now, then one per tick, until `stop`. A round that changed
    /// something, and a change in the peer's reachability, are told through the notices.
    pub fn background(&self, stop: &Receiver<()>, reports: Reports) {
        let ticker = crossbeam_channel::tick(self.interval);
        let mut failing: Option<String> = None;
        loop {
            let result = self.round();
            // Before anything is said of this round: whoever reads that may ask `status` next.
            *lock(&self.next) = Some(Instant::now() + self.interval);
            match result {
                Ok(summary) => {
                    if failing.take().is_some() {
                        self.back_again();
                    }
                    if summary.changed() || summary.conflicts > 0 {
                        match reports {
                            Reports::Stdout(mode) => println!("{}", render(&summary, mode)),
                            Reports::AbovePrompt => {
                                let copies = self.new_copies();
                                self.notices.say(&report(&summary, &copies));
                            }
                            Reports::Nothing => {}
                        }
                    }
                }
                Err(_) if self.syncer.stopped() => break,
                Err(message) => {
                    // Said once, not on every tick while the peer stays down.
                    if failing.as_deref() != Some(message.as_str()) {
                        self.unreachable(&message);
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

    fn back_again(&self) {
        let peer = self.syncer.peer_addr();
        self.syncer
            .local()
            .log
            .record(&made(peer), "sync round", "ok: the peer is back");
        self.notices.say(&format!("{peer} is back; syncing again"));
    }

    fn unreachable(&self, message: &str) {
        let (peer, every) = (self.syncer.peer_addr(), self.interval);
        log::warn!("sync with {peer} failed: {message}");
        self.syncer.local().log.record(
            &made(peer),
            "sync round",
            &format!("failed: {message} (retrying every {every:?})"),
        );
        self.notices.say(&format!(
            "cannot sync with {peer}: {message}; trying again every {}",
            seconds(every)
        ));
    }
}

/// A round's summary as `--once` and a shell without a terminal print it.
pub fn render(summary: &Summary, mode: Mode) -> String {
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

/// One line for a round that changed something, above the prompt, then `copies`: one line per
/// conflict copy that appeared.
pub fn report(summary: &Summary, copies: &[String]) -> String {
    let now = timestamp::local_display(timestamp::now_ns());
    let clock = now.split(' ').nth(1).unwrap_or_default();
    let mut lines = vec![format!("[{clock}] {}", summary.text())];
    lines.extend_from_slice(copies);
    lines.join("\n")
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

impl StageCommands for Live {
    fn sync(&self) -> Result<Outcome> {
        self.shell_round.store(true, Ordering::SeqCst);
        let result = self.round();
        self.shell_round.store(false, Ordering::SeqCst);
        let cut = self.syncer.was_cancelled() && !self.syncer.stopped();
        match result {
            Ok(s) => Ok(Outcome::Synced {
                text: s.text(),
                json: s.json(),
            }),
            Err(_) if cut => Err(minibox::Error::Interrupted(
                "cancelled: the round was cut short; what it installed stays, the rest comes next round".into(),
            )),
            Err(message) => Err(minibox::Error::Usage(message)),
        }
    }

    fn status(&self) -> Result<Outcome> {
        let peer = self.syncer.peer_addr();
        let (last_text, last_json) = match &*lock(&self.last) {
            None => ("none yet".to_string(), json!(null)),
            Some(last) => {
                let when = timestamp::local_display(last.at_ns);
                let (ok, said) = match &last.result {
                    Ok(s) => (true, s.text()),
                    Err(e) => (false, format!("failed: {e}")),
                };
                let json = json!({"at": timestamp::rfc3339(last.at_ns), "ok": ok, "result": said});
                (format!("{when}: {said}"), json)
            }
        };
        let next = lock(&self.next).map(|at| at.saturating_duration_since(Instant::now()));
        let next_text = match next {
            Some(d) => {
                let secs = d.as_secs_f64().ceil();
                format!("in {secs:.0} s (every {})", seconds(self.interval))
            }
            None => format!("every {}", seconds(self.interval)),
        };
        let text = format!("peer: {peer}\nlast round: {last_text}\nnext round: {next_text}");
        let json = json!({
            "peer": peer,
            "last_round": last_json,
            "next_round_in_secs": next.map(|d| d.as_secs_f64()),
            "interval_secs": self.interval.as_secs_f64(),
        });
        Ok(Outcome::Report {
            key: "status",
            text,
            json,
        })
    }
}
