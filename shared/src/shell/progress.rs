//! What a person at a terminal sees while a command takes more than a moment: a progress bar
//! for a download, a spinner while the other box works on an answer (`hash checkall` reads every
//! file there). Neither appears on a pipe or with `--json`, nor for a command that is over
//! within [`DELAY`], so quick commands print only their result.
//!
//! The bar tells the truth from the first byte: it is created (hidden) when the transfer starts,
//! so its clock starts there too, and the rate it shows is bytes received over the time since
//! then, not the jump from nothing to 70 % that a bar created late would measure.

use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use indicatif::{ProgressDrawTarget, ProgressState, ProgressStyle};

use super::output::human_size;

/// How long a command runs before a bar or a spinner appears.
pub const DELAY: Duration = Duration::from_millis(300);

/// A download's progress bar.
pub struct ProgressBar<'n> {
    /// Whether the bar may be drawn at all (terminal, not JSON).
    enabled: bool,
    /// The bar, from the first report on (hidden until [`DELAY`] has passed).
    bar: Option<indicatif::ProgressBar>,
    /// Whether the bar is drawn yet.
    shown: bool,
    /// The file's name, shown beside the bar.
    name: &'n str,
}

impl<'n> ProgressBar<'n> {
    /// A bar for the download of `name`; draws nothing unless `enabled`.
    pub fn new(enabled: bool, name: &'n str) -> Self {
        ProgressBar {
            enabled,
            bar: None,
            shown: false,
            name,
        }
    }

    /// `done` bytes of `total` have arrived.
    pub fn update(&mut self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar =
                indicatif::ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            bar.set_style(style());
            bar.set_message(self.name.to_string());
            bar
        });
        bar.set_position(done);
        if !self.shown && bar.elapsed() >= DELAY {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    /// Removes the bar from the screen.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `name [=====>    ] 12.00 MiB/64.00 MiB 95.3 MiB/s, 1 s left`.
fn style() -> ProgressStyle {
    let template = "{msg} [{bar:30}] {bytes}/{total_bytes} {speed}";
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("speed", speed)
        .progress_chars("=> ")
}

/// The average rate since the first byte, and the time left at that rate; nothing until there
/// is something to measure.
fn speed(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let secs = state.elapsed().as_secs_f64();
    let done = state.pos();
    if secs < 0.2 || done == 0 {
        return;
    }
    let rate = done as f64 / secs;
    let left = state.len().unwrap_or(done).saturating_sub(done) as f64 / rate;
    let _ = write!(
        w,
        "{}/s, {:.0} s left",
        human_size(rate as u64),
        left.ceil()
    );
}

/// A spinner with a sentence, shown while a command waits for an answer that takes a while.
/// Dropping it removes it.
pub struct Waiting {
    /// Dropped to end the spinner.
    stop: Option<Sender<()>>,
    /// The thread that draws it.
    thread: Option<JoinHandle<()>>,
}

impl Waiting {
    /// Shows `message` with a spinner and the time waited, once [`DELAY`] has passed, unless
    /// dropped first. Draws nothing unless `enabled`.
    pub fn start(enabled: bool, message: String) -> Self {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let spawned = enabled.then(|| {
            thread::Builder::new()
                .name("waiting".into())
                .spawn(move || {
                    if stopped.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                        return;
                    }
                    let spinner = indicatif::ProgressBar::new_spinner();
                    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                        spinner.set_style(style);
                    }
                    spinner.set_message(message);
                    spinner.enable_steady_tick(Duration::from_millis(120));
                    let _ = stopped.recv();
                    spinner.finish_and_clear();
                })
                .ok()
        });
        Waiting {
            stop: Some(stop),
            thread: spawned.flatten(),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
