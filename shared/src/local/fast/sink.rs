//! The large-file sink: the plain sink's job (`local::sink`) on two cores, around the page cache.
//! Skippable on a first reading; `scripts/bench.sh` rows `tcp-fresh` and `udp` show what it buys.
//!
//! Receiving is three jobs for every buffer: take it from the network, write it, hash it.
//!
//! - **Hashing** is pure CPU and the slowest of the three (MD5 runs at about 600 MB/s): it gets a
//!   thread of its own ([`BackgroundHasher`]). Filled buffers travel to it over a channel and
//!   come back empty, so a fixed set circulates and memory stays flat; a slow hasher makes the
//!   receiver wait instead of letting data pile up.
//! - **Writing** goes around the page cache (`O_DIRECT`): the disk reads the bytes straight from
//!   our buffer. An ordinary `write` first copies them into fresh page-cache pages, and finding a
//!   gigabyte of free pages is work for the kernel (on a virtual machine, a great deal). The
//!   kernel wants such writes to start at, and span, whole disk blocks from aligned memory:
//!   [`Block`] buffers are aligned, and only the file's last partial block goes the ordinary way.
//!   Where the file system refuses `O_DIRECT` (a `tmpfs`), every write is an ordinary one.
//! - **Zeros** are not written at all: a buffer of nothing but zeros, in a new file, is left a
//!   hole (the file reads as zeros there and the disk holds nothing), as `cp --sparse` does. A
//!   sparse disk image or database file arrives sparse, and costs a comparison per buffer.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::local::sink::Sink;
use crate::protocol::md5::{Hasher, Md5};

/// Bytes per buffer: large enough that a system call per buffer costs nothing, a whole number of
/// disk blocks.
pub const BLOCK: usize = 1024 * 1024;

/// Alignment for `O_DIRECT` (buffer address, file offset and length): 4 KiB covers the logical
/// block size of every disk Linux knows, including 512-byte ones.
pub const ALIGN: usize = 4096;

/// Files at least this large go through a [`DirectSink`]; below it, a thread and the alignment
/// rules cost more than they save.
pub const LARGE: u64 = 4 * 1024 * 1024;

/// How many buffers circulate between the receiver and the hasher.
const BUFFERS: usize = 4;

/// A buffer of zeros to compare with (it costs no memory until read, and then one shared page).
static ZEROS: [u8; BLOCK] = [0; BLOCK];

/// A buffer, and how much of it is filled. Buffers for large files hold [`BLOCK`] bytes and
/// start at an address aligned to [`ALIGN`].
///
/// The alignment comes from over-allocating by [`ALIGN`] bytes and starting at the first aligned
/// address inside; a `Vec`'s heap memory never moves while it is not resized, so the buffer
/// stays aligned as it travels between threads.
pub struct Block {
    /// The allocation (for an aligned buffer, [`ALIGN`] bytes larger than the buffer).
    raw: Vec<u8>,
    /// Where the buffer starts inside `raw`.
    start: usize,
    /// The buffer's size.
    cap: usize,
    /// Bytes filled.
    len: usize,
}

impl Block {
    /// A fresh, empty, aligned buffer of [`BLOCK`] bytes.
    pub fn new() -> Self {
        let raw = vec![0u8; BLOCK + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        Block {
            raw,
            start,
            cap: BLOCK,
            len: 0,
        }
    }

    /// The filled part.
    pub fn data(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The part not filled yet.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.raw[self.start + self.len..self.start + self.cap]
    }

    /// Takes the first `n` bytes of [`Block::spare`] as filled.
    pub fn filled(&mut self, n: usize) {
        self.len = (self.len + n).min(self.cap);
    }

    /// Whether the buffer is full.
    pub fn is_full(&self) -> bool {
        self.len == self.cap
    }
}

impl Default for Block {
    fn default() -> Self {
        Block::new()
    }
}

/// An MD5 computed on a thread of its own, fed with [`Block`]s in order (see the module docs).
pub struct BackgroundHasher {
    /// Filled buffers on their way to the hasher; dropping it tells the hasher to finish.
    full: Option<crossbeam_channel::Sender<Block>>,
    /// Buffers the hasher is done with.
    empty: crossbeam_channel::Receiver<Block>,
    /// The hasher thread; it returns the digest.
    thread: Option<std::thread::JoinHandle<Md5>>,
}

impl BackgroundHasher {
    /// Starts the hasher thread with `buffers` buffers.
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn start(buffers: usize) -> io::Result<Self> {
        let (full_tx, full_rx) = crossbeam_channel::bounded::<Block>(buffers);
        let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Block>(buffers);
        for _ in 0..buffers {
            let _ = empty_tx.send(Block::new());
        }
        let thread = std::thread::Builder::new()
            .name("md5".into())
            .spawn(move || {
                let mut hasher = Hasher::new();
                for block in full_rx {
                    hasher.update(block.data());
                    // Never block here: if the owner has gone, the spare is simply freed.
                    let _ = empty_tx.try_send(block);
                }
                hasher.digest()
            })?;
        Ok(BackgroundHasher {
            full: Some(full_tx),
            empty: empty_rx,
            thread: Some(thread),
        })
    }

    /// An empty buffer to fill (waits while all are with the hasher).
    pub fn buffer(&self) -> Block {
        let mut block = self.empty.recv().unwrap_or_default();
        block.len = 0;
        block
    }

    /// Hands over a filled buffer.
    pub fn submit(&self, block: Block) {
        if let Some(full) = &self.full {
            let _ = full.send(block);
        }
    }

    /// Waits for the hasher to finish and returns the MD5 of everything submitted.
    ///
    /// # Panics
    /// If the hasher thread panicked (it only hashes bytes; it cannot).
    pub fn finish(mut self) -> Md5 {
        self.full = None;
        self.thread
            .take()
            .map(|t| t.join().expect("the md5 thread only hashes bytes"))
            .unwrap_or_default()
    }
}

impl Drop for BackgroundHasher {
    fn drop(&mut self) {
        // Abandoned mid-way (an error): close the channel and join, so no thread outlives us.
        self.full = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The bytes of one large file, in order, on their way to a file and an MD5 (see the module
/// docs).
pub struct DirectSink<'f> {
    /// The file, opened the ordinary way.
    file: &'f File,
    /// The same file opened with `O_DIRECT`, for whole disk blocks.
    direct: Option<File>,
    /// Where the next byte goes.
    offset: u64,
    /// Whether the file was empty when the sink began: only then does a buffer of zeros need no
    /// write (a resumed partial download may hold other bytes there).
    fresh: bool,
    /// Bytes gathered, not yet written.
    block: Block,
    /// The hasher thread.
    hasher: BackgroundHasher,
}

impl<'f> DirectSink<'f> {
    /// A sink writing into `file`, which lives at `path`, from its start.
    ///
    /// # Errors
    /// If the hasher thread cannot be started.
    pub fn new(file: &'f File, path: &Path) -> io::Result<Self> {
        let fresh = file.metadata()?.len() == 0;
        let hasher = BackgroundHasher::start(BUFFERS)?;
        let block = hasher.buffer();
        Ok(DirectSink {
            file,
            direct: open_direct(path),
            offset: 0,
            fresh,
            block,
            hasher,
        })
    }

    /// Writes and hashes what was gathered.
    fn flush(&mut self) -> io::Result<()> {
        if self.block.len == 0 {
            return Ok(());
        }
        self.write_out()?;
        self.offset += self.block.len as u64;
        let next = self.hasher.buffer();
        self.hasher.submit(std::mem::replace(&mut self.block, next));
        Ok(())
    }

    /// Writes the gathered bytes at `offset`: nothing if they are all zeros, whole aligned blocks
    /// around the page cache when we can, the rest the ordinary way.
    fn write_out(&mut self) -> io::Result<()> {
        let data = self.block.data();
        // A new file reads as zeros wherever nothing was written: leave a hole.
        if self.fresh && data == &ZEROS[..data.len()] {
            return Ok(());
        }
        let aligned = match &self.direct {
            Some(_) if self.offset.is_multiple_of(ALIGN as u64) => data.len() / ALIGN * ALIGN,
            _ => 0,
        };
        if let (Some(direct), true) = (&self.direct, aligned > 0) {
            match direct.write_all_at(&data[..aligned], self.offset) {
                Ok(()) => {}
                // The file system wants something else of direct writes: go the ordinary way.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    log::debug!("O_DIRECT write refused ({e}); writing through the cache");
                    self.direct = None;
                    return self.file.write_all_at(data, self.offset);
                }
                Err(e) => return Err(e),
            }
        }
        if aligned < data.len() {
            self.file
                .write_all_at(&data[aligned..], self.offset + aligned as u64)?;
        }
        Ok(())
    }
}

impl Sink for DirectSink<'_> {
    fn spare(&mut self) -> &mut [u8] {
        self.block.spare()
    }

    fn filled(&mut self, n: usize) -> io::Result<()> {
        self.block.len = (self.block.len + n).min(self.block.cap);
        if self.block.is_full() {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Md5> {
        self.flush()?;
        // The length, should the file end in a hole.
        self.file.set_len(self.offset)?;
        let DirectSink { hasher, .. } = *self;
        Ok(hasher.finish())
    }
}

/// Opens `path` a second time for writing around the page cache, if the file system allows.
fn open_direct(path: &Path) -> Option<File> {
    let opened = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path);
    opened
        .inspect_err(|e| log::debug!("no O_DIRECT for {}: {e}", path.display()))
        .ok()
}

#[cfg(test)]
mod tests;
