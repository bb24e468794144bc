//! The bookkeeping of a reliable transfer, without any socket: what the receiver holds
//! ([`Reassembly`]), what the sender has in flight ([`Flight`]) and how long to wait for an answer
//! ([`Rtt`]).
//!
//! Keeping this apart from the sockets makes every rule testable with plain function calls: "block
//! 5 arrives before block 4", "this ack reports a gap", "the timer fired" are just calls, and the
//! tests check the state that follows.
//!
//! Times are nanoseconds since the transfer began (a `u64`), given by the caller.
//!
//! The rules, in short:
//! - **Selective repeat.** The receiver keeps blocks that arrive early (within its window) and
//!   reports the holes; the sender resends exactly the holes.
//! - **Flow control.** The sender never sends a block at or beyond `cumulative + window` of the
//!   receiver's latest ack: the receiver has room for exactly that much.
//! - **Congestion control.** The sender also keeps its own window (`cwnd`): it grows by one block
//!   per block acknowledged until the first loss ("slow start", doubling every round trip), then
//!   by one block per round trip; a loss halves it, a timeout shrinks it to [`MIN_CWND`]. On an
//!   idle loopback it soon stops mattering; on a lossy path it keeps the sender from flooding.
//! - **Which holes are real losses.** A missing block counts as lost only once a datagram sent
//!   *after* it has arrived (the ack's `echo` is later than the block's last sending time). An ack
//!   that is merely old, or overtook a block still on its way, triggers no resend.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::time::Duration;

use super::wire::{Ack, MAX_GAPS};

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

/// What a data datagram changed at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next expected block: delivered.
    InOrder,
    /// The next expected block, and it closed a hole: the blocks kept after it were delivered
    /// too.
    FilledGap,
    /// A block past a hole: kept until the hole is filled.
    Early,
    /// Already had it.
    Duplicate,
    /// Outside the window (or past the end of the file): ignored.
    Outside,
}

/// The receiver's side: delivers blocks in order, keeps early ones, and writes the acks.
#[derive(Debug)]
pub struct Reassembly {
    /// Blocks in the file.
    blocks: u32,
    /// The cumulative ack: every block below has been delivered.
    next: u32,
    /// How many blocks from `next` on we accept (our buffer, in blocks).
    window: u32,
    /// Early blocks, at `block % window`, with their number (the ring never holds two blocks
    /// for one slot, since only `[next, next + window)` is accepted).
    slots: Vec<Option<(u32, Vec<u8>)>>,
    /// One past the highest block that arrived.
    seen_end: u32,
    /// The largest `sent_at` seen.
    echo: u64,
    /// Buffers of delivered early blocks, to reuse.
    spare: Vec<Vec<u8>>,
}

impl Reassembly {
    /// A receiver for `blocks` blocks that accepts `window` blocks past its cumulative ack.
    pub fn new(blocks: u32, window: u32) -> Self {
        let window = window.clamp(1, MAX_WINDOW);
        Reassembly {
            blocks,
            next: 0,
            window,
            slots: (0..window).map(|_| None).collect(),
            seen_end: 0,
            echo: 0,
            spare: Vec::new(),
        }
    }

    /// Takes one data datagram. In-order bytes go to `deliver` at once (followed by any early
    /// blocks they release); early ones are copied and kept.
    ///
    /// # Errors
    /// Whatever `deliver` returns (a full disk, say).
    pub fn accept(
        &mut self,
        block: u32,
        sent_at: u64,
        payload: &[u8],
        deliver: &mut impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<Arrival> {
        if block >= self.blocks || u64::from(block) >= u64::from(self.next) + u64::from(self.window)
        {
            return Ok(Arrival::Outside);
        }
        // Any of our datagrams arriving proves the ones sent before it had their chance.
        self.echo = self.echo.max(sent_at);
        if block < self.next {
            return Ok(Arrival::Duplicate);
        }
        let slot = self.slot(block);
        if block > self.next {
            if self.slots[slot].is_some() {
                return Ok(Arrival::Duplicate);
            }
            let mut copy = self.spare.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(payload);
            self.slots[slot] = Some((block, copy));
            self.seen_end = self.seen_end.max(block + 1);
            return Ok(Arrival::Early);
        }
        deliver(payload)?;
        self.next += 1;
        let mut released = false;
        while self.next < self.blocks {
            let slot = self.slot(self.next);
            match self.slots[slot].take() {
                Some((b, bytes)) if b == self.next => {
                    deliver(&bytes)?;
                    self.spare.push(bytes);
                    self.next += 1;
                    released = true;
                }
                other => {
                    self.slots[slot] = other;
                    break;
                }
            }
        }
        self.seen_end = self.seen_end.max(self.next);
        Ok(if released {
            Arrival::FilledGap
        } else {
            Arrival::InOrder
        })
    }

    fn slot(&self, block: u32) -> usize {
        (block % self.window) as usize
    }

    fn has(&self, block: u32) -> bool {
        block < self.next || matches!(&self.slots[self.slot(block)], Some((b, _)) if *b == block)
    }

    /// Every block delivered?
    pub fn complete(&self) -> bool {
        self.next == self.blocks
    }

    /// Some block past the cumulative ack has arrived, so there is a hole before it.
    pub fn has_holes(&self) -> bool {
        self.seen_end > self.next
    }

    /// How many blocks were delivered in order.
    pub fn delivered(&self) -> u32 {
        self.next
    }

    /// The window we advertise.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// The ack that describes what we hold now. If there are more holes than one ack can list,
    /// it describes only the range up to the first hole it leaves out.
    pub fn ack(&self, token: u64) -> Ack {
        let mut gaps: Vec<Range<u32>> = Vec::new();
        let mut seen_end = self.seen_end;
        let mut b = self.next;
        while b < self.seen_end {
            if self.has(b) {
                b += 1;
                continue;
            }
            if gaps.len() == MAX_GAPS {
                seen_end = b;
                break;
            }
            let start = b;
            while b < self.seen_end && !self.has(b) {
                b += 1;
            }
            gaps.push(start..b);
        }
        Ack {
            token,
            cumulative: self.next,
            window: self.window,
            seen_end,
            echo: self.echo,
            gaps,
        }
    }
}

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
        if lost_something {
            self.ssthresh = (self.cwnd / 2).max(MIN_CWND);
            self.cwnd = self.ssthresh;
            self.grown = 0;
            self.last_cut = now;
        } else {
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
        newly > 0
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
#[allow(clippy::single_range_in_vec_init)] // lists of gaps that happen to have one
mod tests {
    use super::*;

    /// Feeds blocks to a reassembly and collects what it delivers.
    fn feed(r: &mut Reassembly, out: &mut Vec<u8>, block: u32, at: u64) -> Arrival {
        r.accept(block, at, &[block as u8], &mut |bytes: &[u8]| {
            out.extend_from_slice(bytes);
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn in_order_blocks_are_delivered_at_once() {
        let mut r = Reassembly::new(3, 8);
        let mut out = Vec::new();
        assert_eq!(feed(&mut r, &mut out, 0, 1), Arrival::InOrder);
        assert_eq!(feed(&mut r, &mut out, 1, 2), Arrival::InOrder);
        assert_eq!(feed(&mut r, &mut out, 1, 3), Arrival::Duplicate);
        assert_eq!(feed(&mut r, &mut out, 2, 4), Arrival::InOrder);
        assert!(r.complete());
        assert_eq!(out, vec![0, 1, 2]);
        let ack = r.ack(7);
        assert_eq!((ack.cumulative, ack.seen_end, ack.echo), (3, 3, 4));
        assert!(ack.gaps.is_empty());
    }

    #[test]
    fn holes_are_reported_and_filled() {
        let mut r = Reassembly::new(10, 8);
        let mut out = Vec::new();
        feed(&mut r, &mut out, 0, 1);
        assert_eq!(feed(&mut r, &mut out, 2, 3), Arrival::Early);
        assert_eq!(feed(&mut r, &mut out, 5, 6), Arrival::Early);
        assert_eq!(feed(&mut r, &mut out, 5, 7), Arrival::Duplicate);
        assert_eq!(feed(&mut r, &mut out, 9, 8), Arrival::Outside, "1 + 8 = 9");
        let ack = r.ack(1);
        assert_eq!(ack.cumulative, 1);
        assert_eq!(ack.seen_end, 6);
        assert_eq!(ack.gaps, vec![1..2, 3..5]);
        assert_eq!(ack.echo, 7);
        assert_eq!(out, vec![0]);
        assert_eq!(feed(&mut r, &mut out, 1, 9), Arrival::FilledGap);
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(r.ack(1).gaps, vec![3..5]);
        feed(&mut r, &mut out, 4, 10);
        feed(&mut r, &mut out, 3, 11);
        assert_eq!(out, vec![0, 1, 2, 3, 4, 5]);
        for b in 6..10 {
            feed(&mut r, &mut out, b, 20);
        }
        assert!(r.complete());
        assert_eq!(out, (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn a_long_list_of_holes_is_cut_at_the_first_one_left_out() {
        let n = (MAX_GAPS as u32 + 10) * 2;
        let mut r = Reassembly::new(n, n);
        let mut out = Vec::new();
        for b in (1..n).step_by(2) {
            feed(&mut r, &mut out, b, 1);
        }
        let ack = r.ack(1);
        assert_eq!(ack.gaps.len(), MAX_GAPS);
        // Holes are the even blocks; the first unreported one is 2 * MAX_GAPS.
        assert_eq!(ack.seen_end, 2 * MAX_GAPS as u32);
        assert_eq!(ack.gaps[0], 0..1);
    }

    #[test]
    fn delivery_errors_are_returned() {
        let mut r = Reassembly::new(2, 2);
        let err = r
            .accept(0, 1, b"x", &mut |_: &[u8]| {
                Err(io::Error::other("disk full"))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }

    fn ack(cum: u32, seen_end: u32, echo: u64, gaps: Vec<Range<u32>>) -> Ack {
        Ack {
            token: 1,
            cumulative: cum,
            window: 100,
            seen_end,
            echo,
            gaps,
        }
    }

    /// Sends everything the flight allows at time `now`, returning the blocks.
    fn send_all(f: &mut Flight, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(b) = f.next_to_send() {
            f.on_sent(b, now);
            out.push(b);
        }
        out
    }

    #[test]
    fn nothing_is_sent_before_the_receiver_speaks_and_never_past_its_window() {
        let mut f = Flight::new(100);
        assert_eq!(f.next_to_send(), None);
        f.on_ack(
            &Ack {
                window: 5,
                ..ack(0, 0, 0, vec![])
            },
            1,
        );
        assert_eq!(send_all(&mut f, 10), vec![0, 1, 2, 3, 4]);
        assert!(!f.can_send());
        // Acking two blocks opens two more slots.
        assert!(f.on_ack(
            &Ack {
                window: 5,
                ..ack(2, 2, 10, vec![])
            },
            20
        ));
        assert_eq!(send_all(&mut f, 30), vec![5, 6]);
    }

    #[test]
    fn only_the_gaps_are_resent() {
        let mut f = Flight::new(10);
        f.on_ack(&ack(0, 0, 0, vec![]), 1);
        assert_eq!(send_all(&mut f, 10), (0..10).collect::<Vec<_>>());
        // 0..3 arrived, 3 and 6..8 are missing, 9 arrived last.
        assert!(f.on_ack(&ack(3, 10, 10, vec![3..4, 6..8]), 100));
        // Sent at 10, the echo is 10 as well: no datagram sent *after* them has arrived yet.
        assert_eq!(f.next_to_send(), None);
        let mut f = Flight::new(10);
        f.on_ack(&ack(0, 0, 0, vec![]), 1);
        for b in 0..10 {
            let b2 = f.next_to_send().unwrap();
            assert_eq!(b, b2);
            f.on_sent(b, 10 + u64::from(b));
        }
        assert!(f.on_ack(&ack(3, 10, 19, vec![3..4, 6..8]), 100));
        assert_eq!(send_all(&mut f, 200), vec![3, 6, 7]);
        assert_eq!(f.resends, 3);
        // The same (stale) ack again: those blocks were just resent, nothing more to do.
        assert!(!f.on_ack(&ack(3, 10, 19, vec![3..4, 6..8]), 210));
        assert_eq!(f.next_to_send(), None);
        // The resends arrive.
        assert!(f.on_ack(&ack(10, 10, 200, vec![]), 300));
        assert!(f.done());
    }

    #[test]
    fn a_loss_halves_the_window_once_per_flight() {
        let mut f = Flight::new(1000);
        f.on_ack(&ack(0, 0, 0, vec![]), 1);
        let start = f.cwnd();
        let sent = send_all(&mut f, 10);
        assert_eq!(sent.len() as u32, start);
        // Two separate holes of the same flight: one cut.
        f.on_ack(&ack(0, 10, 11, vec![0..1, 5..6]), 20);
        assert_eq!(f.cwnd(), start / 2);
        f.on_ack(&ack(0, 12, 11, vec![0..1, 5..6, 10..11]), 21);
        assert_eq!(f.cwnd(), start / 2);
    }

    #[test]
    fn a_timeout_resends_the_oldest_blocks_and_backs_off() {
        let mut f = Flight::new(10);
        f.on_ack(&ack(0, 0, 0, vec![]), 1);
        send_all(&mut f, 10);
        // 1 and 3 arrived.
        f.on_ack(&ack(0, 4, 5, vec![0..1, 2..3]), 20);
        let before = f.rtt.rto();
        f.on_timeout(1_000);
        assert_eq!(f.cwnd(), MIN_CWND);
        assert!(f.rtt.rto() > before);
        assert_eq!(send_all(&mut f, 2_000), vec![0, 2, 4, 5]);
        assert_eq!(f.timeouts, 1);
    }

    #[test]
    fn an_ack_with_huge_ranges_costs_no_more_than_the_blocks_sent() {
        let mut f = Flight::new(u32::MAX);
        f.on_ack(&ack(0, 0, 0, vec![]), 1);
        send_all(&mut f, 10);
        let started = std::time::Instant::now();
        let hostile = ack(0, u32::MAX, u64::MAX, vec![4_000_000_000..4_000_000_001]);
        f.on_ack(&hostile, 20);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(f.acked(), 0);
    }

    #[test]
    fn acks_for_blocks_never_sent_are_ignored() {
        let mut f = Flight::new(10);
        f.on_ack(&ack(0, 0, 0, vec![]), 1);
        assert!(!f.on_ack(&ack(5, 5, 1, vec![]), 2));
        assert_eq!(f.acked(), 0);
    }

    #[test]
    fn the_timeout_follows_the_measured_round_trip() {
        let mut rtt = Rtt::default();
        assert_eq!(rtt.rto(), INITIAL_RTO);
        for _ in 0..20 {
            rtt.sample(100_000_000); // 100 ms
        }
        let rto = rtt.rto();
        assert!(rto >= Duration::from_millis(100) && rto < Duration::from_millis(150));
        rtt.back_off();
        assert!(rtt.rto() >= rto * 2 || rtt.rto() == MAX_RTO);
        for _ in 0..20 {
            rtt.back_off();
        }
        assert_eq!(rtt.rto(), MAX_RTO);
        let mut fast = Rtt::default();
        fast.sample(10_000);
        assert_eq!(fast.rto(), MIN_RTO, "a fast loopback still waits MIN_RTO");
    }
}
