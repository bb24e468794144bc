//! The sender's bookkeeping of a UDP download, without any socket: what is in flight, what
//! each ack means, and how long to wait for one ([`Rtt`]). Times are ns since the transfer
//! began, given by the caller.
//!
//! - **Flow control.** The sender never sends a block at or beyond `cumulative + window` of the
//!   receiver's latest ack: the receiver has room for exactly that much.
//! - **Congestion control.** The sender also keeps its own window (`cwnd`): it grows by one block
//!   per block acknowledged until the first loss ("slow start", doubling every round trip), then
//!   by one block per round trip; a loss halves it, a timeout shrinks it to [`MIN_CWND`].
//! - **Which holes are real losses.** A missing block counts as lost only once a datagram sent
//!   *after* it has arrived (the ack's `echo` is later than the block's last sending time). An
//!   ack that is merely old, or overtook a block still on its way, triggers no resend.

use std::collections::VecDeque;
use std::time::Duration;

use super::datagram::Ack;

/// The smallest congestion window, in blocks.
pub const MIN_CWND: u32 = 4;
/// The congestion window a transfer starts with.
pub const INITIAL_CWND: u32 = 16;
/// No window (ours or the receiver's) grows beyond this many blocks.
pub const MAX_WINDOW: u32 = 1 << 16;
/// Wait this long for a first answer, before any round trip was measured.
pub const INITIAL_RTO: Duration = Duration::from_millis(200);
/// Never time out faster than this: on a busy two-core machine a process may not run for a few
/// milliseconds, and a needless timeout costs the whole congestion window.
pub const MIN_RTO: Duration = Duration::from_millis(30);
/// Never wait longer than this between two retransmissions.
pub const MAX_RTO: Duration = Duration::from_secs(1);

/// The round-trip time estimator and retransmission timeout (the classic smoothed mean plus four
/// deviations), with exponential backoff while nothing comes back.
#[derive(Debug, Clone, Default)]
pub struct Rtt {
    /// Smoothed round trip, ns; `None` before the first sample.
    srtt: Option<u64>,
    /// Smoothed mean deviation, ns.
    rttvar: u64,
    /// How many timeouts in a row: the timeout doubles with each.
    backoff: u32,
}

impl Rtt {
    /// Feeds one measured round trip.
    pub fn sample(&mut self, ns: u64) {
        match self.srtt {
            None => {
                self.srtt = Some(ns);
                self.rttvar = ns / 2;
            }
            Some(srtt) => {
                self.rttvar = (3 * self.rttvar + srtt.abs_diff(ns)) / 4;
                self.srtt = Some((7 * srtt + ns) / 8);
            }
        }
        self.backoff = 0;
    }

    /// Doubles the timeout (up to [`MAX_RTO`]) after a timeout.
    pub fn back_off(&mut self) {
        self.backoff = (self.backoff + 1).min(16);
    }

    /// The smoothed round trip, if measured.
    pub fn smoothed(&self) -> Option<Duration> {
        self.srtt.map(Duration::from_nanos)
    }

    /// How long to wait for an answer before resending.
    pub fn rto(&self) -> Duration {
        let base = match self.srtt {
            None => INITIAL_RTO,
            Some(srtt) => Duration::from_nanos(srtt + (4 * self.rttvar).max(1_000_000)),
        };
        let base = base.clamp(MIN_RTO, MAX_RTO);
        base.saturating_mul(1 << self.backoff.min(8)).min(MAX_RTO)
    }
}

/// What the sender knows about one block it sent and that is not yet cumulatively acked.
#[derive(Debug, Clone, Copy)]
struct Sent {
    /// The receiver has it (selectively acked).
    acked: bool,
    /// Waiting in the resend queue.
    queued: bool,
    /// When its latest copy left, ns.
    at: u64,
}

/// The sender's side: which block to send next, and what every ack means.
#[derive(Debug)]
pub struct Flight {
    /// Blocks in the file.
    blocks: u32,
    /// The receiver's cumulative ack.
    base: u32,
    /// The first block never sent.
    next_new: u32,
    /// Blocks `[base, next_new)`.
    sent: VecDeque<Sent>,
    /// Blocks found lost, to resend before anything new (entries may be stale: checked when
    /// popped).
    lost: VecDeque<u32>,
    /// The receiver's advertised window; 0 until its first ack.
    peer_window: u32,
    /// Our congestion window, blocks.
    cwnd: u32,
    /// Blocks acked since `cwnd` last grew, in congestion avoidance.
    grown: u32,
    /// Slow start until `cwnd` reaches this.
    ssthresh: u32,
    /// When the window was last cut: losses of blocks sent before that are the same event.
    last_cut: u64,
    /// Round trip and timeout.
    pub rtt: Rtt,
    /// Datagrams sent for the first time.
    pub first_sends: u64,
    /// Datagrams sent again.
    pub resends: u64,
    /// Times the retransmission timer fired.
    pub timeouts: u64,
}

impl Flight {
    /// A sender of `blocks` blocks, before the receiver has said anything.
    pub fn new(blocks: u32) -> Self {
        Flight {
            blocks,
            base: 0,
            next_new: 0,
            sent: VecDeque::new(),
            lost: VecDeque::new(),
            peer_window: 0,
            cwnd: INITIAL_CWND,
            grown: 0,
            ssthresh: MAX_WINDOW,
            last_cut: 0,
            rtt: Rtt::default(),
            first_sends: 0,
            resends: 0,
            timeouts: 0,
        }
    }

    /// The receiver holds every block.
    pub fn done(&self) -> bool {
        self.base == self.blocks
    }

    /// The cumulative ack.
    pub fn acked(&self) -> u32 {
        self.base
    }

    /// Blocks sent that the receiver has not confirmed.
    pub fn outstanding(&self) -> bool {
        self.sent.iter().any(|s| !s.acked)
    }

    /// The window in force: the smaller of ours and the receiver's.
    pub fn window(&self) -> u32 {
        self.cwnd.min(self.peer_window)
    }

    /// The congestion window (for logs).
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn state(&mut self, block: u32) -> Option<&mut Sent> {
        let i = block.checked_sub(self.base)?;
        self.sent.get_mut(i as usize)
    }

    fn may_send_new(&self) -> bool {
        self.next_new < self.blocks
            && u64::from(self.next_new) < u64::from(self.base) + u64::from(self.window())
    }

    /// Drops stale entries from the front of the resend queue.
    fn prune_lost(&mut self) {
        while let Some(&b) = self.lost.front() {
            let live = b >= self.base
                && self
                    .sent
                    .get((b - self.base) as usize)
                    .is_some_and(|s| s.queued && !s.acked);
            if live {
                return;
            }
            self.lost.pop_front();
        }
    }

    /// The block to send now, if any: a lost one first, else a new one if the window allows.
    pub fn next_to_send(&mut self) -> Option<u32> {
        self.prune_lost();
        if let Some(b) = self.lost.pop_front() {
            return Some(b);
        }
        self.may_send_new().then_some(self.next_new)
    }

    /// Whether [`Flight::next_to_send`] would give a block now. The sender asks for an immediate
    /// ack on the datagram after which this is false: it is about to wait.
    pub fn can_send(&mut self) -> bool {
        self.prune_lost();
        !self.lost.is_empty() || self.may_send_new()
    }

    /// Records that `block` (as given by [`Flight::next_to_send`]) left at `now`.
    pub fn on_sent(&mut self, block: u32, now: u64) {
        if block == self.next_new {
            self.sent.push_back(Sent {
                acked: false,
                queued: false,
                at: now,
            });
            self.next_new += 1;
            self.first_sends += 1;
        } else if let Some(s) = self.state(block) {
            s.queued = false;
            s.at = now;
            self.resends += 1;
        }
    }

    /// Takes an ack. Returns true if it told us something new (blocks acked): that is progress,
    /// and it also brings a round-trip sample.
    pub fn on_ack(&mut self, ack: &Ack, now: u64) -> bool {
        // An ack for blocks never sent is a confused or hostile peer: ignore it whole.
        if ack.cumulative > self.next_new {
            return false;
        }
        self.peer_window = ack.window.clamp(1, MAX_WINDOW);
        let mut newly = 0u32;
        while self.base < ack.cumulative {
            if let Some(s) = self.sent.pop_front() {
                newly += u32::from(!s.acked);
            }
            self.base += 1;
        }
        let seen_end = ack.seen_end.min(self.next_new);
        let mut from = self.base;
        let mut lost_something = false;
        // Clamped to what we sent: a hostile ack's ranges never make us loop past that.
        let gaps = ack
            .gaps
            .iter()
            .map(|g| g.start.min(seen_end)..g.end.min(seen_end));
        for gap in gaps.chain(std::iter::once(seen_end..seen_end)) {
            for b in from..gap.start.max(from) {
                if let Some(s) = self.state(b) {
                    if !s.acked {
                        s.acked = true;
                        newly += 1;
                    }
                }
            }
            for b in gap.start.max(self.base)..gap.end {
                let echo = ack.echo;
                let Some(s) = self.state(b) else { continue };
                if !s.acked && !s.queued && s.at < echo {
                    s.queued = true;
                    let at = s.at;
                    self.lost.push_back(b);
                    lost_something |= at > self.last_cut;
                }
            }
            from = from.max(gap.end);
        }
        if newly > 0 && ack.echo > 0 && ack.echo <= now {
            self.rtt.sample(now - ack.echo);
        }
        self.adjust_window(newly, lost_something, now);
        newly > 0
    }

    /// Congestion control after an ack: a loss halves the window (once per flight); otherwise
    /// each block acked grows it, by one (slow start) or by one per window (avoidance).
    fn adjust_window(&mut self, newly: u32, lost_something: bool, now: u64) {
        if lost_something {
            self.ssthresh = (self.cwnd / 2).max(MIN_CWND);
            self.cwnd = self.ssthresh;
            self.grown = 0;
            self.last_cut = now;
            return;
        }
        for _ in 0..newly {
            if self.cwnd < self.ssthresh {
                self.cwnd += 1;
            } else {
                self.grown += 1;
                if self.grown >= self.cwnd {
                    self.grown = 0;
                    self.cwnd += 1;
                }
            }
        }
        self.cwnd = self.cwnd.min(MAX_WINDOW);
    }

    /// The timer fired with nothing heard: shrink the window to [`MIN_CWND`], double the
    /// timeout, and resend the oldest unacknowledged blocks, as many as the shrunk window holds
    /// (more than one, so that on a lossy path one of them, and one ack, likely gets through).
    /// The ack that answers will report any other holes.
    pub fn on_timeout(&mut self, now: u64) {
        self.timeouts += 1;
        self.ssthresh = (self.cwnd / 2).max(MIN_CWND);
        self.cwnd = MIN_CWND;
        self.grown = 0;
        self.last_cut = now;
        self.rtt.back_off();
        let base = self.base;
        let oldest: Vec<u32> = (0..self.sent.len())
            .filter(|&i| !self.sent[i].acked)
            .take(MIN_CWND as usize)
            .map(|i| base + i as u32)
            .collect();
        for &b in oldest.iter().rev() {
            if let Some(s) = self.state(b) {
                if !s.queued {
                    s.queued = true;
                    self.lost.push_front(b);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
