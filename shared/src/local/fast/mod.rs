//! Speed, behind seams: each module does a job the plain code does too, with fewer copies,
//! system calls or reads. Skip this folder on a first reading; the box behaves the same
//! without it, only slower. Each module says what it buys and which row of `scripts/bench.sh`
//! shows it.
//!
//! | module | the job | the plain way |
//! |---|---|---|
//! | [`sink`] | large downloads hashed on a second core, written around the page cache | `local::sink::HashingSink` |
//! | [`scans`], [`watch`] | a scan used again while inotify reports no change | `local::scan::scan` each time |
//! | [`sys`] | open with the whole path gate, rename without a look, no needless `chmod` | `local::gate`, `fs::rename` |

pub mod scans;
pub mod sink;
pub mod sys;
pub mod watch;
