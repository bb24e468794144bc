//! Layer 4, asking: the client's side of every request, one file per request. Nothing here
//! knows the serving side (`crate::serve`), and the reverse.
//!
//! | module | what it holds |
//! |---|---|
//! | [`connect`] | a connection opened as this box |
//! | [`patience`] | a server that says it is working: held to its progress |
//! | [`list`] | `index …` and `hash checkall` |
//! | [`listing_rules`] | the rules every frame of a listing holds to |
//! | [`hash`] | `hash verify` |
//! | [`download`] | `download TCP`: receive, verify, install |
//! | [`download_udp`] | `download UDP` (the UDP chapter) |
//! | [`sync_list`] | stage 3: the listing of a sync round |
//! | [`pipeline`] | stage 3 speed: many downloads over one connection |
//! | [`blocks`], [`range`] | big files by blocks: only the blocks this box lacks cross the wire |

pub mod blocks;
pub mod connect;
pub mod download;
pub mod download_udp;
pub mod hash;
pub mod list;
pub mod listing_rules;
pub mod patience;
pub mod pipeline;
pub mod range;
pub mod sync_list;

pub use connect::connect;
