//! The embedded DNS server of user-defined networks: wire format
//! ([`message`]), the name tables ([`DnsTable`]) and the per-container
//! server ([`serve`]).

pub(crate) mod message;
mod server;
mod table;

pub use message::{build_query, parse_answers, Rdata, RCODE_NXDOMAIN, TYPE_A, TYPE_AAAA, TYPE_PTR};
pub use server::{serve, DnsOptions, DnsServer, Upstream, EMBEDDED_DNS};
pub use table::{ptr_to_ip, DnsTable, Lookup};
