//! Where the bytes of a download go: a temporary file and an MD5, in one pass.
//!
//! Receiving a file is three jobs for every buffer of bytes: take it from the network, write it
//! to disk, hash it. For a small file one thread does all three in turn. For a large one the
//! costs are worth pulling apart, because on a machine with two cores they can overlap:
//!
//! - **Hashing** is pure CPU and the slowest of the three (MD5 runs at about 600 MB/s): it gets a
//!   thread of its own ([`BackgroundHasher`]). Filled buffers travel to it over a channel and
//!   come back empty, so a fixed set of buffers circulates and memory stays flat; a slow hasher
//!   makes the receiver wait instead of letting data pile up.
//! - **Writing** goes around the page cache (`O_DIRECT`): the disk reads the bytes straight from
//!   our buffer. An ordinary `write` would first copy them into fresh page-cache pages, and
//!   finding a gigabyte of free pages is work for the kernel (on a virtual machine, a great deal
//!   of work). We hold the bytes anyway, and we have already hashed them, so nothing needs that
//!   cached copy. The kernel asks that such writes start at, and span, whole disk blocks from
//!   memory aligned to them; [`Block`] buffers are aligned, and only the file's last partial
//!   block goes through the ordinary, cached path. Where the file system refuses `O_DIRECT` (a
//!   `tmpfs`, say) every write is an ordinary one.
//!
//! The receiving thread is left with the network and the `write` calls. TCP downloads read
//! straight into the sink's buffer ([`FileSink::spare`]); UDP downloads copy each block in
//! ([`FileSink::put`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::hash::{Hasher, Md5};

/// Bytes per buffer: large enough that a system call per buffer costs nothing, a whole number of
/// disk blocks.
pub const BLOCK: usize = 1024 * 1024;

/// Alignment for `O_DIRECT` (buffer address, file offset and length): 4 KiB covers the logical
/// block size of every disk Linux knows, including 512-byte ones.
pub const ALIGN: usize = 4096;

/// Files at least this large are hashed on a second thread and written around the page cache;
/// below it, a thread and the alignment rules cost more than they save.
pub const LARGE: u64 = 4 * 1024 * 1024;

/// How many buffers circulate between the receiver and the hasher.
const BUFFERS: usize = 4;

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

    /// A fresh, empty buffer of `cap` bytes, not aligned (for a small file, written the
    /// ordinary way).
    pub fn small(cap: usize) -> Self {
        Block {
            raw: vec![0u8; cap],
            start: 0,
            cap,
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

/// The MD5 of what went into a sink so far.
enum Hashing {
    /// On this thread.
    Here(Hasher),
    /// On a thread of its own.
    Background(BackgroundHasher),
}

/// The bytes of one file, in order, on their way to a file and an MD5 (see the module docs).
pub struct FileSink<'f> {
    /// The file, opened the ordinary way.
    file: &'f File,
    /// The same file opened with `O_DIRECT`, for the whole disk blocks of a large file.
    direct: Option<File>,
    /// Where the next byte goes.
    offset: u64,
    /// Whether to leave the file's own position after the bytes at the end.
    seek_at_end: bool,
    /// Bytes gathered, not yet written.
    block: Block,
    /// The running MD5.
    hash: Hashing,
}

impl<'f> FileSink<'f> {
    /// A sink writing `size` bytes into the new, empty `file` that lives at `path`. A large
    /// file is written around the page cache (see the module docs).
    ///
    /// # Errors
    /// If the hasher thread cannot be started.
    pub fn new(file: &'f File, path: &Path, size: u64) -> io::Result<Self> {
        FileSink::start(file, Some(path), 0, false, size)
    }

    /// A sink writing `size` bytes into `file` from its current position, and leaving the
    /// position after them. Always through the page cache.
    ///
    /// # Errors
    /// If the file's position cannot be read or the hasher thread cannot be started.
    pub fn append(file: &'f File, size: u64) -> io::Result<Self> {
        // (`Seek` is implemented for `&File`: a shared handle has one position, in the kernel.)
        let mut handle = file;
        let offset = handle.stream_position()?;
        FileSink::start(file, None, offset, true, size)
    }

    fn start(
        file: &'f File,
        path: Option<&Path>,
        offset: u64,
        seek_at_end: bool,
        size: u64,
    ) -> io::Result<Self> {
        let large = size >= LARGE;
        let direct = path.filter(|_| large).and_then(open_direct);
        let (hash, block) = if large {
            let bg = BackgroundHasher::start(BUFFERS)?;
            let block = bg.buffer();
            (Hashing::Background(bg), block)
        } else {
            // Small: one buffer the size of the file (at least one byte, so that a sink fed
            // more than it announced still moves on), written in one call.
            let cap = usize::try_from(size).map_or(BLOCK, |n| n.clamp(1, BLOCK));
            (Hashing::Here(Hasher::new()), Block::small(cap))
        };
        Ok(FileSink {
            file,
            direct,
            offset,
            seek_at_end,
            block,
            hash,
        })
    }

    /// Room to read the next bytes into; say how many with [`FileSink::filled`].
    pub fn spare(&mut self) -> &mut [u8] {
        self.block.spare()
    }

    /// Takes the first `n` bytes of [`FileSink::spare`] as the next bytes of the file.
    ///
    /// # Errors
    /// If the disk fails.
    pub fn filled(&mut self, n: usize) -> io::Result<()> {
        self.block.len = (self.block.len + n).min(self.block.cap);
        if self.block.is_full() {
            self.flush()?;
        }
        Ok(())
    }

    /// Copies `bytes` in as the next bytes of the file.
    ///
    /// # Errors
    /// If the disk fails.
    pub fn put(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let spare = self.block.spare();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.filled(n)?;
        }
        Ok(())
    }

    /// Writes and hashes what was gathered.
    fn flush(&mut self) -> io::Result<()> {
        if self.block.len == 0 {
            return Ok(());
        }
        self.write_out()?;
        self.offset += self.block.len as u64;
        match &mut self.hash {
            Hashing::Here(h) => {
                h.update(self.block.data());
                self.block.len = 0;
            }
            Hashing::Background(bg) => {
                let next = bg.buffer();
                bg.submit(std::mem::replace(&mut self.block, next));
            }
        }
        Ok(())
    }

    /// Writes the gathered bytes at `offset`: whole aligned blocks around the page cache when we
    /// can, the rest the ordinary way.
    fn write_out(&mut self) -> io::Result<()> {
        let data = self.block.data();
        let aligned = if self.direct.is_some() && self.offset % ALIGN as u64 == 0 {
            data.len() / ALIGN * ALIGN
        } else {
            0
        };
        if aligned > 0 {
            if let Some(direct) = &self.direct {
                match direct.write_all_at(&data[..aligned], self.offset) {
                    Ok(()) => {}
                    // The file system turned out to want something else of direct writes:
                    // write this and the rest the ordinary way.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        log::debug!("O_DIRECT write refused ({e}); writing through the cache");
                        self.direct = None;
                        return self.file.write_all_at(data, self.offset);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if aligned < data.len() {
            self.file
                .write_all_at(&data[aligned..], self.offset + aligned as u64)?;
        }
        Ok(())
    }

    /// Writes the rest, leaves the file's position after it, and returns the MD5 of everything
    /// that went in.
    ///
    /// # Errors
    /// If the disk fails.
    pub fn finish(mut self) -> io::Result<Md5> {
        self.flush()?;
        if self.seek_at_end {
            let mut handle = self.file;
            handle.seek(SeekFrom::Start(self.offset))?;
        }
        Ok(match self.hash {
            Hashing::Here(h) => h.digest(),
            Hashing::Background(bg) => bg.finish(),
        })
    }
}

/// Opens `path` a second time for writing around the page cache, if the file system allows.
fn open_direct(path: &Path) -> Option<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .inspect_err(|e| log::debug!("no O_DIRECT for {}: {e}", path.display()))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::digest_reader;

    #[test]
    fn blocks_are_aligned_whatever_the_allocator_gives() {
        for _ in 0..8 {
            let mut b = Block::new();
            assert_eq!(b.spare().as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.spare().len(), BLOCK);
            assert!(b.data().is_empty());
        }
    }

    #[test]
    fn the_background_hasher_agrees_with_the_plain_one() {
        let data: Vec<u8> = (0..BLOCK * 3 + 17).map(|i| (i % 253) as u8).collect();
        let bg = BackgroundHasher::start(2).unwrap();
        for chunk in data.chunks(BLOCK / 2 + 1) {
            let mut block = bg.buffer();
            block.spare()[..chunk.len()].copy_from_slice(chunk);
            block.len = chunk.len();
            bg.submit(block);
        }
        assert_eq!(bg.finish(), digest_reader(data.as_slice()).unwrap());
        // Dropped half-way: no hang, no leaked thread.
        let bg = BackgroundHasher::start(2).unwrap();
        bg.submit(Block::new());
        drop(bg);
    }

    /// Every size around the thresholds, fed by `put` in odd pieces or through `spare`, into a
    /// new file or appended after what a file holds: the file holds exactly the bytes, in
    /// place, and the MD5 is theirs.
    #[test]
    fn a_sink_writes_and_hashes_every_byte_in_order() {
        let sizes = [
            0usize,
            1,
            ALIGN - 1,
            ALIGN + 1,
            BLOCK,
            BLOCK * 2 + 5,
            LARGE as usize,
            LARGE as usize + ALIGN * 3 + 77,
        ];
        for size in sizes {
            for (append, by_put) in [(false, false), (false, true), (true, false), (true, true)] {
                let data: Vec<u8> = (0..size).map(|j| (j * 31 % 251) as u8).collect();
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("f");
                let mut file = File::create(&path).unwrap();
                let mut want = Vec::new();
                let mut sink = if append {
                    std::io::Write::write_all(&mut file, b"head").unwrap();
                    want.extend_from_slice(b"head");
                    FileSink::append(&file, size as u64).unwrap()
                } else {
                    FileSink::new(&file, &path, size as u64).unwrap()
                };
                if by_put {
                    for piece in data.chunks(32 * 1024 + 7) {
                        sink.put(piece).unwrap();
                    }
                } else {
                    let mut rest = data.as_slice();
                    while !rest.is_empty() {
                        let spare = sink.spare();
                        let n = spare.len().min(rest.len()).min(100_000);
                        spare[..n].copy_from_slice(&rest[..n]);
                        rest = &rest[n..];
                        sink.filled(n).unwrap();
                    }
                }
                let md5 = sink.finish().unwrap();
                want.extend_from_slice(&data);
                if append {
                    std::io::Write::write_all(&mut file, b"tail").unwrap();
                    want.extend_from_slice(b"tail");
                }
                let what = format!("size {size}, append {append}, put {by_put}");
                assert!(std::fs::read(&path).unwrap() == want, "{what}");
                assert_eq!(md5, digest_reader(data.as_slice()).unwrap(), "{what}");
            }
        }
    }
}
