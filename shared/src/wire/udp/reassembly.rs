//! The receiver's bookkeeping of a UDP download, without any socket: which blocks it holds,
//! which it delivered in order, and the ack that describes them. Keeping it apart from the
//! socket makes every rule a plain function call in a test ("block 5 arrives before block 4").
//!
//! **Selective repeat.** The receiver keeps blocks that arrive early (within its window) and
//! reports the holes; the sender resends exactly the holes.

use std::io;
use std::ops::Range;

use super::datagram::{Ack, MAX_GAPS};
use super::flight::MAX_WINDOW;

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

#[cfg(test)]
mod tests;
