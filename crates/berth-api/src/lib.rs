//! Types of the Docker Engine API (v1.41–v1.45) as berth speaks it, shared by
//! the daemon and the client, plus the pure helpers both sides need: image
//! reference parsing, filter decoding, API version rules, the multiplexed
//! stream framing and the detach-key scanner. Nothing here does I/O.

pub mod container;
pub mod detach;
pub mod filters;
pub mod image;
pub mod query;
pub mod reference;
pub mod stream;
pub mod strslice;
pub mod system;
pub mod units;
pub mod version;

pub use filters::Filters;
pub use reference::{Reference, ReferenceError};
pub use strslice::StrSlice;
