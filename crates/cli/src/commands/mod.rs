//! One module per command group. Each prints, and calls clp-core for everything else;
//! none imports another.

pub mod check;
pub mod doctor;
pub mod help;
pub mod init;
pub mod launch;
pub mod list;
pub mod render;
pub mod show;
pub mod small;
