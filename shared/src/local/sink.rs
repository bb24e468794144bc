//! Where a download's bytes go: into a temporary file and into an MD5, in one pass, so the file
//! is checked without being read again.
//!
//! [`crate::local::install::TempFile::sink`] picks the writer by size: the plain
//! [`HashingSink`] below, or, for a large file, `fast::sink::DirectSink`, which does the same on
//! two cores and around the page cache (skip it on a first reading).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::protocol::md5::{Hasher, Md5};

/// Bytes gathered before each write: large enough that system calls cost nothing.
pub const BUFFER: usize = 1024 * 1024;

/// A file's bytes, in order, on their way to a file and an MD5.
pub trait Sink {
    /// Room to read the next bytes into; say how many with [`Sink::filled`].
    fn spare(&mut self) -> &mut [u8];
    /// Takes the first `n` bytes of [`Sink::spare`] as the next bytes of the file.
    ///
    /// # Errors
    /// If the disk fails.
    fn filled(&mut self, n: usize) -> io::Result<()>;
    /// Writes what is left and returns the MD5 of everything that went in.
    ///
    /// # Errors
    /// If the disk fails.
    fn finish(self: Box<Self>) -> io::Result<Md5>;
    /// Copies `bytes` in as the next bytes of the file.
    ///
    /// # Errors
    /// If the disk fails.
    fn put(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let spare = self.spare();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.filled(n)?;
        }
        Ok(())
    }
}

/// The plain sink: gathers bytes in a buffer, then writes them and feeds them to the MD5.
pub struct HashingSink<'f> {
    file: &'f File,
    buf: Vec<u8>,
    len: usize,
    offset: u64,
    hasher: Hasher,
}

impl<'f> HashingSink<'f> {
    /// A sink for `size` bytes into `file` (a buffer the size of the file, at most [`BUFFER`],
    /// at least one byte so that a sink fed more than announced still moves on).
    pub fn new(file: &'f File, size: u64) -> Self {
        let cap = usize::try_from(size).map_or(BUFFER, |n| n.clamp(1, BUFFER));
        HashingSink {
            file,
            buf: vec![0; cap],
            len: 0,
            offset: 0,
            hasher: Hasher::new(),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let data = &self.buf[..self.len];
        self.file.write_all_at(data, self.offset)?;
        self.hasher.update(data);
        self.offset += self.len as u64;
        self.len = 0;
        Ok(())
    }
}

impl Sink for HashingSink<'_> {
    fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    fn filled(&mut self, n: usize) -> io::Result<()> {
        self.len = (self.len + n).min(self.buf.len());
        if self.len == self.buf.len() {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Md5> {
        self.flush()?;
        Ok(self.hasher.digest())
    }
}

#[cfg(test)]
mod tests;
