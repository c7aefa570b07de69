//! clp-net's integration tests, one binary: the HTTP and SOCKS proxies on loopback
//! with local servers standing in for the internet, and the namespace helper with real
//! bubblewrap.

mod netns;
mod proxy;
mod socks;
mod support;
