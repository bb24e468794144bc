//! Big files by blocks: how a file is cut into blocks, and the MD5 of each, computed alike by
//! the box that sends and the box that receives (`docs/blocks.md`).
//!
//! A big file is cut into blocks of one fixed size, the last one shorter. The size grows with
//! the file: 128 KiB, doubled until the file has fewer than [`TARGET_BLOCKS`] blocks, at most
//! 16 MiB (Syncthing's rule): a 1 GiB file has 1,024 blocks of 1 MiB. Each block has its own
//! MD5, so two boxes can tell which blocks of a file they already share without sending them.
//! The rule is part of the protocol: a receiver checks that a sender's block size is the one
//! the rule gives for the file's size.

use std::ops::Range;

use super::md5::{Hasher, Md5};

/// Files at least this large move by blocks (smaller ones whole: a block list's round trips
/// would cost more than its bytes save), and get a block list when the box hashes them.
pub const BY_BLOCKS: u64 = 1024 * 1024;

/// [`BY_BLOCKS`], or `MINIBOX_BY_BLOCKS=BYTES`, set to measure the choice (`scripts/bench.sh`);
/// read once per process.
pub fn by_blocks_from() -> u64 {
    static FROM: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *FROM.get_or_init(
        || match std::env::var("MINIBOX_BY_BLOCKS").map(|v| v.trim().parse()) {
            Ok(Ok(bytes)) => u64::max(bytes, MIN_BLOCK),
            _ => BY_BLOCKS,
        },
    )
}

/// The smallest block size.
pub const MIN_BLOCK: u64 = 128 * 1024;

/// The largest block size.
pub const MAX_BLOCK: u64 = 16 * 1024 * 1024;

/// The block size doubles until a file has fewer blocks than this.
pub const TARGET_BLOCKS: u64 = 2000;

/// The most blocks a receiver accepts in one list (a file of 16 TiB): a list costs 16 bytes of
/// memory per block, and a peer must not make us hold more than that for a claim.
pub const MAX_BLOCKS: u64 = 1 << 20;

/// Block MD5s per `block_sums` frame: far below a frame's limit.
pub const SUMS_PER_CHUNK: usize = 1024;

/// The block size for a file of `size` bytes.
pub fn block_size(size: u64) -> u64 {
    let mut block = MIN_BLOCK;
    while block < MAX_BLOCK && size.div_ceil(block) >= TARGET_BLOCKS {
        block *= 2;
    }
    block
}

/// How many blocks a file of `size` bytes has (none when it is empty).
pub fn block_count(size: u64) -> u64 {
    size.div_ceil(block_size(size))
}

/// The blocks of one version of a file: its size, the block size, and each block's MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockList {
    /// The file's size.
    pub size: u64,
    /// Bytes per block (the last block may be shorter).
    pub block_size: u64,
    /// Each block's MD5, in order.
    pub md5s: Vec<Md5>,
}

impl BlockList {
    /// The list of a `size`-byte file's block `md5s`; `None` if their count is not the size's.
    pub fn new(size: u64, md5s: Vec<Md5>) -> Option<Self> {
        let list = BlockList {
            size,
            block_size: block_size(size),
            md5s,
        };
        (list.md5s.len() as u64 == block_count(size)).then_some(list)
    }

    /// How many blocks.
    pub fn len(&self) -> usize {
        self.md5s.len()
    }

    /// Whether the file is empty (no blocks).
    pub fn is_empty(&self) -> bool {
        self.md5s.is_empty()
    }

    /// The bytes of block `i` in the file.
    pub fn range(&self, i: usize) -> Range<u64> {
        let start = (i as u64).saturating_mul(self.block_size).min(self.size);
        start..start.saturating_add(self.block_size).min(self.size)
    }

    /// The bytes of blocks `first .. first + count` in the file.
    pub fn span(&self, first: u64, count: u64) -> Range<u64> {
        let at = |i: u64| i.saturating_mul(self.block_size).min(self.size);
        at(first)..at(first.saturating_add(count))
    }
}

/// A running MD5 per block: fed a file's bytes in order, it closes one every `block_size` bytes.
#[derive(Clone)]
pub struct BlockHasher {
    /// Bytes per block.
    block_size: u64,
    /// Bytes of the current block so far.
    filled: u64,
    /// The current block's MD5 so far.
    current: Hasher,
    /// The MD5s of the blocks closed so far.
    done: Vec<Md5>,
}

impl BlockHasher {
    /// A hasher for blocks of `block_size` bytes.
    pub fn new(block_size: u64) -> Self {
        BlockHasher {
            block_size: block_size.max(1),
            filled: 0,
            current: Hasher::new(),
            done: Vec::new(),
        }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = usize::try_from(self.block_size - self.filled).unwrap_or(usize::MAX);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.current.update(now);
            self.filled += now.len() as u64;
            if self.filled == self.block_size {
                let block = std::mem::take(&mut self.current);
                self.done.push(block.digest());
                self.filled = 0;
            }
            bytes = rest;
        }
    }

    /// The MD5s of the blocks closed so far.
    pub fn done(&self) -> &[Md5] {
        &self.done
    }

    /// Closes the last, shorter block (if any) and returns every block's MD5.
    pub fn finish(mut self) -> Vec<Md5> {
        if self.filled > 0 {
            self.done.push(self.current.digest());
        }
        self.done
    }
}

#[cfg(test)]
mod tests;
