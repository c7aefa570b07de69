//! clp-net's integration tests, one binary: the proxy on loopback with local servers
//! standing in for the internet, and the namespace helper with real bubblewrap.

mod netns;
mod proxy;
mod support;
