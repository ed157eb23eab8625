//! Root tests on the real kernel. Each test is a "host" in a throwaway
//! network namespace; the machine's own network is never touched.

mod util;

mod bridge;
mod dns;
mod netns_pool;
mod ports;
mod restart;
