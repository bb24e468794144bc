//! A lying server, to attack the side that downloads.
//!
//! [`Liar`] speaks the real protocol (it is built on [`minibox::wire::conn::Connection`] and the real
//! frames), answers the handshake politely, and then lies in one way, chosen by a [`Lie`]: names
//! that leave the box, a size that does not match the bytes sent, a wrong MD5, a listing of a
//! million entries, a transfer that stalls or trickles. Like a box, it listens for UDP on its TCP
//! port, and two lies are told over UDP: a download offered and sent as datagrams whose bytes do
//! not match the MD5 it announced, and one whose trailer brings the wrong MD5. Two lie about a
//! big file's blocks: a wrong MD5 in its block list, a wrong block. [`check`] runs the downloading side (the
//! stage-1 `client`, later `with_sync --once`) against it and demands a refusal with a clear
//! sentence (in its output and in its box's `.minibox/log`), a failure exit status, and nothing
//! installed: the file the box already had is untouched, no other file appeared, `.minibox/tmp/`
//! is empty, and nothing was written next to the box.
//!
//! Each stage adds its downloading binary with [`liar_tests!`](crate::liar_tests), which writes
//! one `#[test]` per lie (so the slow ones, which wait for a timeout, run in parallel).

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use minibox::protocol::blocks::block_size;
use minibox::protocol::limits::ENTRIES_PER_CHUNK;
use minibox::protocol::md5::Md5;
use minibox::protocol::{Entry, ErrorCode, Kind, Reply, Request};
use minibox::wire::conn::Connection;
use minibox::wire::udp::datagram::{self as wire, Datagram, DATA_HEADER};

use crate::arena::{difference, tree};
use crate::{md5_of, pseudo_random, ShellRun};

mod memory;
pub use memory::{check_memory, LONG_NAMES};

/// The name of the one honest-looking file the liar offers.
pub const FILE: &str = "a.txt";

/// What the receiving box holds under [`FILE`] before the attack; it must still hold it after.
pub const OLD_CONTENT: &[u8] = b"the version this box already had\n";

/// How many entries the [`Lie::MillionEntries`] listing announces.
pub const MILLION: u64 = 1_000_000;

/// The longest a liar holds a stalled connection (the victim must give up long before).
const HOLD: Duration = Duration::from_secs(60);

/// The ways the liar lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// Lists (and offers for download) a file named `../escape.txt`.
    ParentName,
    /// Lists (and offers) a file with an absolute name next to the box.
    AbsoluteName,
    /// Lists (and offers) a file inside the victim's own `.minibox/`.
    ReservedName,
    /// Asked for `a.txt`, offers `b.txt`.
    OtherFile,
    /// Announces N bytes, sends half of them, hangs up.
    FewerBytes,
    /// Announces N bytes, sends N + 1000 and a trailer for all of them.
    MoreBytes,
    /// The right bytes, a trailer with another MD5.
    WrongMd5,
    /// An MD5 in the header that the bytes and the trailer do not match.
    HeaderMd5,
    /// A listing of a million entries, streamed in chunks.
    MillionEntries,
    /// A listing whose closing count does not match its entries.
    CountMismatch,
    /// Sends half the file, then nothing, holding the connection open.
    StallMidTransfer,
    /// Sends half the file, then one byte a second.
    TrickleMidTransfer,
    /// Accepts the connection and never answers the hello.
    StallHandshake,
    /// Offers a UDP download with the honest MD5 in the offer and the trailer, and sends blocks
    /// whose bytes are not those (one byte changed).
    UdpBlocks,
    /// Offers a UDP download without an MD5, sends the honest blocks, and then a trailer with
    /// another MD5.
    UdpTrailer,
    /// Answers a listing or a hash with `working` frames forever, its progress creeping by a
    /// byte at a time: a peer that pretends to work.
    EndlessWorking,
    /// Answers a listing or a hash with `working` frames of a scan that never ends, its count
    /// creeping by one file at a time: a peer that pretends to read a huge box.
    EndlessScan,
    /// Answers a listing or a hash with `working` frames whose count of files scanned goes back.
    ScanBack,
    /// Answers a listing with empty `entries` chunks forever.
    EmptyChunks,
    /// Lists the file with its real size, then offers it for download as 2^62 bytes, and
    /// trickles them.
    SizeLie,
    /// Offers a UDP download in 512-byte blocks and sends one new block every 3 s: a new
    /// block often enough to look alive, far below the pace.
    UdpDrip,
    /// A legal sync listing of [`LONG_NAMES`] files with names of about 3,800 bytes (about
    /// 150 MiB), then a hang-up: what it costs the receiver is measured.
    LongNames,
    /// Says a million times, in `same` chunks of 512, that the first folder the client asked
    /// about is the same.
    RepeatedSame,
    /// Not a lie but a race, for a sync round: lists [`FILE`] and [`OTHER_FILE`], then offers
    /// [`FILE`] one byte longer than listed (as if it had changed since), and the other file as
    /// listed.
    OneChanged,
    /// Offers a big file by blocks with one block's MD5 wrong in its block list (the blocks
    /// and the whole file's MD5 honest).
    BlockMd5,
    /// Offers a big file by blocks with an honest block list, and sends one block with a byte
    /// changed.
    WrongBlock,
}

/// The second file of [`Lie::OneChanged`].
pub const OTHER_FILE: &str = "b.txt";

impl Lie {
    /// Every lie told over TCP: what any downloading side (a shell's `download TCP`, a sync
    /// round) can walk into.
    pub const ALL: [Lie; 18] = [
        Lie::ParentName,
        Lie::AbsoluteName,
        Lie::ReservedName,
        Lie::OtherFile,
        Lie::FewerBytes,
        Lie::MoreBytes,
        Lie::WrongMd5,
        Lie::HeaderMd5,
        Lie::MillionEntries,
        Lie::CountMismatch,
        Lie::StallMidTransfer,
        Lie::TrickleMidTransfer,
        Lie::StallHandshake,
        Lie::EndlessWorking,
        Lie::EndlessScan,
        Lie::ScanBack,
        Lie::EmptyChunks,
        Lie::SizeLie,
    ];

    /// The lies told over UDP, for a shell's `download UDP`.
    pub const UDP: [Lie; 3] = [Lie::UdpBlocks, Lie::UdpTrailer, Lie::UdpDrip];

    /// The legal but costly sync listings, whose cost to the receiver is measured
    /// ([`check_memory`]).
    pub const MEMORY: [Lie; 2] = [Lie::LongNames, Lie::RepeatedSame];

    /// The lies about a big file's blocks, for a download by blocks (a shell's `download TCP` of
    /// a file the box has a version of; a sync round's big files).
    pub const BLOCKS: [Lie; 2] = [Lie::BlockMd5, Lie::WrongBlock];

    /// What the shell of a client should type to walk into this lie.
    pub fn shell_input(self) -> &'static str {
        match self {
            Lie::ParentName | Lie::AbsoluteName | Lie::ReservedName => {
                "index longlist\ndownload TCP a.txt\n"
            }
            Lie::MillionEntries | Lie::CountMismatch | Lie::EmptyChunks => "index longlist\n",
            Lie::EndlessWorking => "hash verify a.txt\n",
            Lie::EndlessScan | Lie::ScanBack => "index longlist\n",
            Lie::UdpBlocks | Lie::UdpTrailer | Lie::UdpDrip => "download UDP a.txt\n",
            _ => "download TCP a.txt\n",
        }
    }

    /// Phrases of which the victim's output (stdout and stderr) must contain at least one: the
    /// clear sentence saying what was refused.
    pub fn symptoms(self) -> &'static [&'static str] {
        match self {
            Lie::ParentName => &["must stay inside the box"],
            Lie::AbsoluteName => &["is an absolute path"],
            Lie::ReservedName => &["inside minibox's own"],
            Lie::OtherFile => &["but the peer offered"],
            Lie::FewerBytes => &["closed after"],
            Lie::MoreBytes => &["bad message from the peer", "did not verify"],
            Lie::WrongMd5 | Lie::UdpBlocks | Lie::UdpTrailer | Lie::BlockMd5 | Lie::WrongBlock => {
                &["did not verify"]
            }
            // A round holds the header's MD5 to the listing's before it reads a byte.
            Lie::HeaderMd5 => &["did not verify", "the listing said"],
            Lie::MillionEntries => &["more than 500000 entries"],
            Lie::CountMismatch => &["announced"],
            Lie::StallMidTransfer | Lie::StallHandshake => &["no answer for too long"],
            Lie::TrickleMidTransfer => &["fewer than 16 KiB in 10 s", "no answer for too long"],
            Lie::EndlessWorking | Lie::EndlessScan => &["no real progress in 12 s"],
            Lie::ScanBack => &["scan went back"],
            Lie::EmptyChunks => &["a chunk of 0 entries"],
            // A round knows the listed size and refuses the header at once; a shell's download
            // has no listing to hold it to, and gives up on the trickle.
            Lie::SizeLie => &["the listing said", "fewer than 16 KiB in 10 s"],
            Lie::UdpDrip => &["fewer than 16 KiB in 10 s"],
            Lie::LongNames => &["the peer closed the connection"],
            Lie::RepeatedSame => &["out of order, or twice"],
            Lie::OneChanged => &["the listing said"],
        }
    }

    /// Whether the liar hangs up after the download it lies about.
    fn ends_with_download(self) -> bool {
        matches!(
            self,
            Lie::FewerBytes | Lie::StallMidTransfer | Lie::TrickleMidTransfer | Lie::SizeLie
        )
    }

    /// Whether the victim must wait for a timeout.
    pub fn is_slow(self) -> bool {
        matches!(
            self,
            Lie::StallMidTransfer
                | Lie::TrickleMidTransfer
                | Lie::StallHandshake
                | Lie::EndlessWorking
                | Lie::EndlessScan
                | Lie::SizeLie
                | Lie::UdpDrip
        )
    }
}

/// Size of the offered file: larger than a pace window, so a stall comes after real progress.
pub const HONEST_LEN: usize = 200_000;

/// The file's honest contents.
pub fn honest_bytes() -> Vec<u8> {
    pseudo_random(HONEST_LEN, 0x11A2)
}

/// A running lying server on `127.0.0.1`; stopped on drop.
pub struct Liar {
    /// Where it listens.
    addr: SocketAddr,
    /// Tells every thread to stop.
    stop: Arc<AtomicBool>,
    /// Bytes of listing frames it sent.
    sent: Arc<AtomicU64>,
    /// The acceptor.
    thread: Option<JoinHandle<()>>,
}

impl Liar {
    /// Starts a liar telling `lie`; `outside` is a folder next to the victim's box, used by
    /// [`Lie::AbsoluteName`].
    ///
    /// # Panics
    /// If it cannot bind.
    pub fn start(lie: Lie, outside: &Path) -> Liar {
        let (listener, udp) = bind_tcp_and_udp();
        let udp = Arc::new(udp);
        let addr = listener.local_addr().expect("liar address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let absolute = outside.join("escape.txt").to_string_lossy().into_owned();
        let thread = thread::Builder::new()
            .name("liar".into())
            .spawn(move || {
                let mut workers = Vec::new();
                // Bounded: no victim needs more than a few connections.
                for stream in listener.incoming().take(16) {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let flag = Arc::clone(&flag);
                    let absolute = absolute.clone();
                    let udp = Arc::clone(&udp);
                    let sent = Arc::clone(&counter);
                    workers.push(thread::spawn(move || {
                        let at = Lair {
                            lie,
                            absolute: &absolute,
                            udp: &udp,
                            stop: &flag,
                            sent: &sent,
                        };
                        let _ = serve(stream, &at);
                    }));
                }
                for w in workers {
                    let _ = w.join();
                }
            })
            .expect("liar thread");
        Liar {
            addr,
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// `IP:PORT` to give the victim.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Bytes of listing frames sent so far (what a listing lie cost it to tell).
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP listener and a UDP socket on one port of 127.0.0.1, as a box has: a client sends its
/// UDP datagrams to the address it reached over TCP.
fn bind_tcp_and_udp() -> (TcpListener, UdpSocket) {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind the liar");
        let addr = tcp.local_addr().expect("liar address");
        if let Ok(udp) = UdpSocket::bind(addr) {
            return (tcp, udp);
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// The entry the liar announces for `name` (honest size and MD5 unless told otherwise).
fn entry(name: &str, md5: Option<String>) -> Entry {
    Entry {
        path: name.to_string(),
        kind: Kind::File,
        size: HONEST_LEN as u64,
        mtime_ns: 1_700_000_000_000_000_000,
        mode: 0o644,
        mime: "text/plain".into(),
        md5,
    }
}

/// Waits, doing nothing, until told to stop or [`HOLD`] passes.
fn hold(stop: &AtomicBool) {
    let until = Instant::now() + HOLD;
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        thread::sleep(Duration::from_millis(50));
    }
}

/// What every connection of a liar shares.
struct Lair<'a> {
    lie: Lie,
    /// The absolute name of [`Lie::AbsoluteName`].
    absolute: &'a str,
    udp: &'a UdpSocket,
    stop: &'a AtomicBool,
    /// Bytes of listing frames sent.
    sent: &'a AtomicU64,
}

/// One connection of the liar.
fn serve(stream: TcpStream, at: &Lair<'_>) -> minibox::Result<()> {
    let lie = at.lie;
    let mut conn = Connection::new(stream)?;
    if lie == Lie::StallHandshake {
        hold(at.stop);
        return Ok(());
    }
    if !minibox::wire::handshake::accept_hello(&mut conn, "liar", None)? {
        return Ok(());
    }
    let bytes = honest_bytes();
    let md5 = md5_of(&bytes);
    let evil = evil_name(lie, at.absolute);
    while let Some(request) = conn.recv_opt::<Request>()? {
        if Lie::BLOCKS.contains(&lie) {
            block_lie(&mut conn, lie, request)?;
            continue;
        }
        match request {
            Request::List { .. } | Request::SyncList { .. } | Request::Hash { .. }
                if matches!(lie, Lie::EndlessWorking | Lie::EndlessScan | Lie::ScanBack) =>
            {
                endless_working(&mut conn, lie, at.stop)?;
            }
            Request::SyncList { known } if Lie::MEMORY.contains(&lie) => {
                memory::costly_listing(&mut conn, lie, &known, at.sent)?;
                // The listing was the lie: hang up, so the round ends at its first download.
                return Ok(());
            }
            Request::List { .. } | Request::SyncList { .. } => {
                send_listing(&mut conn, lie, &md5, evil.as_deref(), at.stop)?;
            }
            Request::Hash { path } => conn.send(&Reply::Entry {
                entry: entry(&path, Some(md5.clone())),
            })?,
            Request::DownloadUdp { path } if Lie::UDP.contains(&lie) => {
                udp_lie(&mut conn, at, &path, &bytes, &md5)?;
            }
            Request::Download { path } => {
                send_lie(
                    &mut conn,
                    lie,
                    &path,
                    evil.as_deref(),
                    &bytes,
                    &md5,
                    at.stop,
                )?;
                if lie.ends_with_download() {
                    return Ok(());
                }
            }
            other => refuse(&mut conn, &other)?,
        }
    }
    Ok(())
}

/// The answer to a request the liar does not lie about.
fn refuse(conn: &mut Connection, request: &Request) -> minibox::Result<()> {
    let (code, why) = match request {
        Request::Hello { .. } | Request::Prove { .. } => (ErrorCode::BadRequest, "out of place"),
        Request::DownloadUdp { .. } | Request::UdpReceived { .. } => {
            (ErrorCode::Unsupported, "the liar offers no UDP")
        }
        // A client that asks for blocks first (it has a version of the file) falls back to a
        // whole download, where the lie is told.
        _ => (ErrorCode::Unsupported, "the liar offers no blocks"),
    };
    conn.send(&Reply::error(code, why))
}

/// The name that leaves the box, for the lies that tell one.
fn evil_name(lie: Lie, absolute: &str) -> Option<String> {
    match lie {
        Lie::ParentName => Some("../escape.txt".to_string()),
        Lie::AbsoluteName => Some(absolute.to_string()),
        Lie::ReservedName => Some(".minibox/tmp/planted.part".to_string()),
        _ => None,
    }
}

/// Answers a listing with the lie: a million entries, a count that does not match, empty
/// chunks forever, or the honest file plus the evil name, if any.
fn send_listing(
    conn: &mut Connection,
    lie: Lie,
    md5: &str,
    evil: Option<&str>,
    stop: &AtomicBool,
) -> minibox::Result<()> {
    match lie {
        Lie::MillionEntries => send_million_entries(conn)?,
        Lie::EmptyChunks => {
            // Until the victim hangs up (the send fails), or the liar is stopped.
            let until = Instant::now() + HOLD;
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                conn.send(&Reply::Entries {
                    entries: Vec::new(),
                })?;
                thread::sleep(Duration::from_millis(100));
            }
        }
        Lie::CountMismatch => {
            conn.send(&Reply::Entries {
                entries: vec![entry(FILE, Some(md5.to_string()))],
            })?;
            conn.send(&Reply::End { count: 5 })?;
        }
        _ => {
            let mut entries = vec![entry(FILE, Some(md5.to_string()))];
            let second = match lie {
                Lie::OneChanged => Some(OTHER_FILE),
                _ => evil,
            };
            if let Some(name) = second {
                entries.push(entry(name, Some(md5.to_string())));
            }
            conn.send(&Reply::Entries { entries })?;
            conn.send(&Reply::End {
                count: 1 + u64::from(second.is_some()),
            })?;
        }
    }
    Ok(())
}

/// `working` frames forever (until the victim hangs up or the liar stops), every half second:
/// the bytes hashed creeping by one byte of a gigabyte each time, or for [`Lie::EndlessScan`]
/// the files scanned by one; for [`Lie::ScanBack`] the files scanned going back.
fn endless_working(conn: &mut Connection, lie: Lie, stop: &AtomicBool) -> minibox::Result<()> {
    let until = Instant::now() + HOLD;
    let mut step: u64 = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        conn.send(&match lie {
            Lie::EndlessScan => Reply::Working {
                done: 0,
                total: 0,
                scanned: 1_000 + step,
            },
            Lie::ScanBack => Reply::Working {
                done: 0,
                total: 0,
                scanned: 100_000u64.saturating_sub(step * 60_000),
            },
            _ => Reply::Working {
                done: step,
                total: 1 << 30,
                scanned: 0,
            },
        })?;
        step += 1;
        thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// A listing of a million one-byte files, in chunks.
fn send_million_entries(conn: &mut Connection) -> minibox::Result<()> {
    let mut sent = 0u64;
    while sent < MILLION {
        let n = (MILLION - sent).min(ENTRIES_PER_CHUNK as u64);
        let entries = (sent..sent + n)
            .map(|i| Entry {
                size: 1,
                md5: None,
                ..entry(&format!("f{i:07}"), None)
            })
            .collect();
        // The victim hangs up once it has seen enough: that ends the lie.
        conn.queue(&Reply::Entries { entries })?;
        sent += n;
    }
    conn.send(&Reply::End { count: MILLION })
}

/// Answers a download with the lie.
fn send_lie(
    conn: &mut Connection,
    lie: Lie,
    asked: &str,
    evil: Option<&str>,
    bytes: &[u8],
    md5: &str,
    stop: &AtomicBool,
) -> minibox::Result<()> {
    let net = |e| minibox::Error::net("lying", e);
    send_header(conn, lie, asked, evil)?;
    let half = bytes.len() / 2;
    match lie {
        Lie::SizeLie => trickle(conn, bytes, stop)?,
        Lie::OneChanged if asked == FILE => {
            let longer = [bytes, b"+"].concat();
            conn.raw_writer()?.write_all(&longer).map_err(net)?;
            conn.send(&Reply::Trailer {
                md5: md5_of(&longer),
            })?;
        }
        Lie::FewerBytes => {
            conn.raw_writer()?.write_all(&bytes[..half]).map_err(net)?;
            conn.shutdown();
        }
        Lie::StallMidTransfer => {
            conn.raw_writer()?.write_all(&bytes[..half]).map_err(net)?;
            hold(stop);
        }
        Lie::TrickleMidTransfer => {
            conn.raw_writer()?.write_all(&bytes[..half]).map_err(net)?;
            trickle(conn, &bytes[half..], stop)?;
        }
        Lie::MoreBytes => {
            let mut more = bytes.to_vec();
            more.extend_from_slice(&pseudo_random(1000, 5));
            more[bytes.len()] = 0xEE; // not a frame's version byte
            conn.raw_writer()?.write_all(&more).map_err(net)?;
            conn.send(&Reply::Trailer { md5: md5_of(&more) })?;
        }
        Lie::WrongMd5 => {
            conn.raw_writer()?.write_all(bytes).map_err(net)?;
            conn.send(&Reply::Trailer {
                md5: md5_of(b"not these bytes"),
            })?;
        }
        _ => {
            conn.raw_writer()?.write_all(bytes).map_err(net)?;
            conn.send(&Reply::Trailer {
                md5: md5.to_string(),
            })?;
        }
    }
    Ok(())
}

/// The header of a download, with the lie's name, size or MD5.
fn send_header(
    conn: &mut Connection,
    lie: Lie,
    asked: &str,
    evil: Option<&str>,
) -> minibox::Result<()> {
    let offered = match lie {
        Lie::OtherFile => "b.txt",
        _ => evil.unwrap_or(asked),
    };
    let header_md5 = match lie {
        Lie::HeaderMd5 => Some(md5_of(b"something else")),
        _ => None,
    };
    let size = match lie {
        Lie::SizeLie => 1 << 62,
        Lie::OneChanged if asked == FILE => HONEST_LEN as u64 + 1,
        _ => HONEST_LEN as u64,
    };
    conn.send(&Reply::File {
        entry: Entry {
            size,
            ..entry(offered, header_md5)
        },
    })
}

/// Sends `bytes` one a second, until they run out, the victim hangs up, or the liar stops.
fn trickle(conn: &mut Connection, bytes: &[u8], stop: &AtomicBool) -> minibox::Result<()> {
    let until = Instant::now() + HOLD;
    for &b in bytes {
        if stop.load(Ordering::SeqCst) || Instant::now() > until {
            break;
        }
        let wrote = conn.raw_writer()?.write_all(&[b]);
        wrote.map_err(|e| minibox::Error::net("lying", e))?;
        thread::sleep(Duration::from_secs(1));
    }
    Ok(())
}

/// Size of the file offered by the lies about blocks: big enough to move by blocks.
pub const BLOCKS_LEN: usize = 2 * 1024 * 1024 + 12_345;

/// The block the lies about blocks lie about.
const LYING_BLOCK: usize = 3;

/// Answers one request with a lie about blocks: the big file listed (honestly), its block list
/// and its blocks, one of them a lie.
fn block_lie(conn: &mut Connection, lie: Lie, request: Request) -> minibox::Result<()> {
    let bytes = pseudo_random(BLOCKS_LEN, 0x11A3);
    let md5 = md5_of(&bytes);
    let big = |name: &str| Entry {
        size: BLOCKS_LEN as u64,
        ..entry(name, Some(md5.clone()))
    };
    let size = block_size(BLOCKS_LEN as u64) as usize;
    match request {
        Request::List { .. } | Request::SyncList { .. } => {
            conn.send(&Reply::Entries {
                entries: vec![big(FILE)],
            })?;
            conn.send(&Reply::End { count: 1 })
        }
        Request::Blocks { path } => {
            let mut md5s: Vec<Md5> = bytes.chunks(size).map(Md5::of).collect();
            if lie == Lie::BlockMd5 {
                md5s[LYING_BLOCK] = Md5::of(b"not this block");
            }
            let entry = Entry {
                md5: None,
                ..big(&path)
            };
            let block_size = size as u64;
            conn.send(&Reply::BlockList { entry, block_size })?;
            conn.send(&Reply::BlockSums { md5s })?;
            conn.send(&Reply::Trailer { md5 })
        }
        Request::Range { first, count, .. } => {
            let (start, end) = (first as usize * size, ((first + count) as usize * size));
            let mut sent = bytes[start.min(BLOCKS_LEN)..end.min(BLOCKS_LEN)].to_vec();
            let lying = LYING_BLOCK * size;
            if lie == Lie::WrongBlock && (start..end).contains(&lying) && lying < BLOCKS_LEN {
                sent[lying - start + 7] ^= 0x20;
            }
            conn.send(&Reply::Range {
                first,
                count,
                size: sent.len() as u64,
            })?;
            conn.queue_raw(&sent)?;
            conn.send(&Reply::Trailer { md5 })
        }
        _ => conn.send(&Reply::error(
            ErrorCode::Unsupported,
            "the liar only offers blocks",
        )),
    }
}

/// The block size of the liar's UDP downloads (what a box offers on loopback).
const UDP_BLOCK: usize = 32 * 1024;

/// The token of the liar's UDP downloads (any number below 2^53 will do).
const UDP_TOKEN: u64 = 0x11A2_5EED;

/// The block size of [`Lie::UdpDrip`], the smallest a box may be told to use.
const DRIP_BLOCK: usize = 512;

/// How often [`Lie::UdpDrip`] sends a new block.
const DRIP_EVERY: Duration = Duration::from_secs(3);

/// Answers a `download_udp` with a UDP lie: the offer, the blocks (resent as the client's acks ask;
/// loopback loses nothing, but a lie must not fail for a dull reason; or, for the drip, one new
/// block every few seconds), then, once the client says it has them all, the trailer.
fn udp_lie(
    conn: &mut Connection,
    at: &Lair<'_>,
    asked: &str,
    bytes: &[u8],
    md5: &str,
) -> minibox::Result<()> {
    let (udp, lie) = (at.udp, at.lie);
    let net = |e| minibox::Error::net("lying over UDP", e);
    let (sent_bytes, block_size, trailer_md5) = udp_offer(conn, lie, asked, bytes, md5)?;
    let blocks: Vec<&[u8]> = sent_bytes.chunks(block_size).collect();
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(net)?;
    let mut out = UdpOut {
        udp,
        datagram: vec![0u8; DATA_HEADER + block_size],
        clock: 0,
        client: None,
    };
    let mut incoming = [0u8; wire::MAX_ACK + 64];
    let (mut drip, mut next_drip) = (0u32, Instant::now());
    let until = Instant::now() + HOLD;
    // The client speaks on TCP once it has every block: then the datagrams are done.
    while !conn.poll_input()? {
        if at.stop.load(Ordering::SeqCst) || Instant::now() > until {
            return Ok(());
        }
        let ack = udp.recv_from(&mut incoming).ok().and_then(|(n, from)| {
            out.client = Some(from);
            match wire::decode(&incoming[..n]) {
                Ok(Datagram::Ack(ack)) if ack.token == UDP_TOKEN => Some(ack),
                _ => None,
            }
        });
        if lie == Lie::UdpDrip {
            if out.client.is_some() && Instant::now() >= next_drip {
                out.send(&blocks, &[drip]).map_err(net)?;
                (drip, next_drip) = (drip + 1, Instant::now() + DRIP_EVERY);
            }
            continue;
        }
        let Some(ack) = ack else { continue };
        // Every block the ack does not report as received, within the client's window.
        let count = u32::try_from(blocks.len()).expect("a few blocks");
        let end = count.min(ack.cumulative.saturating_add(ack.window));
        let wanted: Vec<u32> = (ack.cumulative..end)
            .filter(|b| *b >= ack.seen_end || ack.gaps.iter().any(|g| g.contains(b)))
            .collect();
        out.send(&blocks, &wanted).map_err(net)?;
    }
    match conn.recv_opt::<Request>()? {
        Some(Request::UdpReceived { token }) if token == UDP_TOKEN => {
            conn.send(&Reply::Trailer { md5: trailer_md5 })
        }
        // The victim hung up or said something else: the lie is over either way.
        _ => Ok(()),
    }
}

/// Offers a UDP download with the lie's MD5 and block size; returns the bytes it will send, the
/// block size and the MD5 of its trailer.
fn udp_offer(
    conn: &mut Connection,
    lie: Lie,
    asked: &str,
    bytes: &[u8],
    md5: &str,
) -> minibox::Result<(Vec<u8>, usize, String)> {
    let mut sent_bytes = bytes.to_vec();
    let (offer_md5, trailer_md5) = match lie {
        Lie::UdpBlocks => {
            // One byte of the third block, which the offer's and the trailer's MD5 do not cover.
            sent_bytes[2 * UDP_BLOCK + 7] ^= 0x20;
            (Some(md5.to_string()), md5.to_string())
        }
        Lie::UdpDrip => (Some(md5.to_string()), md5.to_string()),
        _ => (None, md5_of(b"not these bytes")),
    };
    let block_size = if lie == Lie::UdpDrip {
        DRIP_BLOCK
    } else {
        UDP_BLOCK
    };
    conn.send(&Reply::UdpOffer {
        entry: entry(asked, offer_md5),
        token: UDP_TOKEN,
        block_size: block_size as u32,
    })?;
    Ok((sent_bytes, block_size, trailer_md5))
}

/// The sending side of the liar's UDP lies.
struct UdpOut<'u> {
    udp: &'u UdpSocket,
    datagram: Vec<u8>,
    clock: u64,
    /// Where the client's datagrams come from.
    client: Option<SocketAddr>,
}

impl UdpOut<'_> {
    /// Sends `wanted` of `blocks` to the client, the last one asking for an ack at once.
    fn send(&mut self, blocks: &[&[u8]], wanted: &[u32]) -> std::io::Result<()> {
        let Some(client) = self.client else {
            return Ok(());
        };
        for (i, &b) in wanted.iter().enumerate() {
            let Some(payload) = blocks.get(b as usize) else {
                continue;
            };
            self.clock += 1;
            let last = i + 1 == wanted.len();
            wire::put_data_header(&mut self.datagram, UDP_TOKEN, b, self.clock, last);
            self.datagram[DATA_HEADER..DATA_HEADER + payload.len()].copy_from_slice(payload);
            self.udp
                .send_to(&self.datagram[..DATA_HEADER + payload.len()], client)?;
        }
        Ok(())
    }
}

/// Runs the downloading side against a liar: given the lie, the liar's address and the victim's
/// box folder, returns how the run ended.
pub type Pull<'a> = &'a dyn Fn(Lie, &str, &Path) -> ShellRun;

/// Puts a victim against a liar telling `lie` and checks that it refused with a clear sentence,
/// failed, and installed nothing. `failure_code` is the exit status required (`None`: any
/// non-zero status). Returns the victim's run, for checks of a stage's own.
///
/// # Panics
/// On the first thing the victim got wrong.
pub fn check(pull: Pull<'_>, lie: Lie, failure_code: Option<i32>) -> ShellRun {
    let scene = Scene::for_lie(lie);
    let liar = Liar::start(lie, &scene.root);
    let started = Instant::now();
    let run = pull(lie, &liar.addr(), &scene.boxdir);
    let took = started.elapsed();
    drop(liar);

    let output = format!("{}{}", run.stdout, run.stderr);
    match failure_code {
        Some(code) => assert_eq!(run.code(), code, "{lie:?}: exit status; output:\n{output}"),
        None => assert_ne!(
            run.code(),
            0,
            "{lie:?}: a lie was accepted; output:\n{output}"
        ),
    }
    if lie.is_slow() {
        // The contract: 10 s without progress (12 s for a server that says it is working). A
        // generous bound for a loaded machine; the point is that it ends, not how fast.
        assert!(
            took < Duration::from_secs(45),
            "{lie:?}: gave up only after {took:?}"
        );
    }
    scene.assert_refused(lie, &run);
    run
}

/// A victim's box beside a folder of its own, as they were before the attack.
pub struct Scene {
    /// Holds everything; removed on drop.
    _tmp: crate::TempDir,
    /// The folder that holds the box (and a file beside it).
    pub root: std::path::PathBuf,
    /// The victim's box.
    pub boxdir: std::path::PathBuf,
    outside_before: crate::arena::Tree,
    box_before: crate::arena::Tree,
}

impl Scene {
    /// A box holding [`FILE`] with [`OLD_CONTENT`], and a file beside it.
    ///
    /// # Panics
    /// On I/O failure.
    pub fn new() -> Scene {
        let tmp = crate::tempdir();
        let root = fs::canonicalize(tmp.path()).expect("canonical");
        let boxdir = root.join("box");
        crate::write(&boxdir, FILE, OLD_CONTENT);
        crate::write(&root, "beside-the-box.txt", b"must stay as it is");
        Scene {
            outside_before: tree(&root, &["box"]),
            box_before: tree(&boxdir, &[minibox::META_DIR]),
            _tmp: tmp,
            root,
            boxdir,
        }
    }

    /// The box for `lie`: [`Scene::new`]'s, except that for the lies about blocks the box's
    /// old version of [`FILE`] is big, so that a shell asks for blocks too.
    pub fn for_lie(lie: Lie) -> Scene {
        let mut scene = Scene::new();
        if Lie::BLOCKS.contains(&lie) {
            crate::write(&scene.boxdir, FILE, &pseudo_random(BLOCKS_LEN, 0x01D));
            scene.box_before = tree(&scene.boxdir, &[minibox::META_DIR]);
        }
        scene
    }

    /// Checks that the victim said why in a clear sentence (on its terminal and in its box's
    /// `.minibox/log`) and installed nothing.
    ///
    /// # Panics
    /// On the first thing the victim got wrong.
    pub fn assert_refused(&self, lie: Lie, run: &ShellRun) {
        let output = format!("{}{}", run.stdout, run.stderr);
        assert!(
            lie.symptoms().iter().any(|s| output.contains(s)),
            "{lie:?}: no clear sentence (wanted one of {:?}); output:\n{output}",
            lie.symptoms()
        );
        // The box's own history says it too, not only the terminal: one line of .minibox/log.
        let log_file = self.boxdir.join(minibox::META_DIR).join("log");
        let log = fs::read_to_string(log_file).unwrap_or_default();
        assert!(
            log.lines()
                .any(|l| lie.symptoms().iter().any(|s| l.contains(s))),
            "{lie:?}: no clear line in the box's .minibox/log (wanted one of {:?}); log:\n{log}",
            lie.symptoms()
        );
        let (bytes, names) = difference(&self.outside_before, &tree(&self.root, &["box"]));
        assert_eq!(bytes, 0, "{lie:?}: written outside the box: {names:?}");
        let now = tree(&self.boxdir, &[minibox::META_DIR]);
        let (bytes, names) = difference(&self.box_before, &now);
        assert_eq!(bytes, 0, "{lie:?}: the box changed: {names:?}");
        let meta = self.boxdir.join(minibox::META_DIR);
        for sub in ["tmp", "trash", "partial"] {
            let left = fs::read_dir(meta.join(sub)).map(|d| d.count()).unwrap_or(0);
            assert_eq!(left, 0, "{lie:?}: .minibox/{sub} is not empty");
        }
    }
}

impl Default for Scene {
    fn default() -> Self {
        Scene::new()
    }
}

/// Writes one `#[test]` per [`Lie`], each calling [`check`] with the given puller and failure
/// status. In a stage's `tests/liar.rs`:
///
/// ```ignore
/// fn pull(lie: Lie, peer: &str, dir: &Path) -> ShellRun { /* run the binary */ }
/// testkit::liar_tests!(pull, Some(1));
/// ```
#[macro_export]
macro_rules! liar_tests {
    ($pull:expr, $code:expr) => {
        $crate::liar_tests!(@one $pull, $code, parent_name, ParentName);
        $crate::liar_tests!(@one $pull, $code, absolute_name, AbsoluteName);
        $crate::liar_tests!(@one $pull, $code, reserved_name, ReservedName);
        $crate::liar_tests!(@one $pull, $code, other_file, OtherFile);
        $crate::liar_tests!(@one $pull, $code, fewer_bytes, FewerBytes);
        $crate::liar_tests!(@one $pull, $code, more_bytes, MoreBytes);
        $crate::liar_tests!(@one $pull, $code, wrong_md5, WrongMd5);
        $crate::liar_tests!(@one $pull, $code, header_md5, HeaderMd5);
        $crate::liar_tests!(@one $pull, $code, million_entries, MillionEntries);
        $crate::liar_tests!(@one $pull, $code, count_mismatch, CountMismatch);
        $crate::liar_tests!(@one $pull, $code, stall_mid_transfer, StallMidTransfer);
        $crate::liar_tests!(@one $pull, $code, trickle_mid_transfer, TrickleMidTransfer);
        $crate::liar_tests!(@one $pull, $code, stall_handshake, StallHandshake);
        $crate::liar_tests!(@one $pull, $code, endless_working, EndlessWorking);
        $crate::liar_tests!(@one $pull, $code, endless_scan, EndlessScan);
        $crate::liar_tests!(@one $pull, $code, scan_back, ScanBack);
        $crate::liar_tests!(@one $pull, $code, empty_chunks, EmptyChunks);
        $crate::liar_tests!(@one $pull, $code, size_lie, SizeLie);
        $crate::liar_tests!(@one $pull, $code, block_md5, BlockMd5);
        $crate::liar_tests!(@one $pull, $code, wrong_block, WrongBlock);
    };
    (@one $pull:expr, $code:expr, $test:ident, $lie:ident) => {
        #[test]
        fn $test() {
            $crate::liar::check(&$pull, $crate::liar::Lie::$lie, $code);
        }
    };
}
