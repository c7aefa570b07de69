//! Each boundary level's own arguments: [`sandbox`] (B, bubblewrap) and [`container`]
//! (C, Docker or Podman). Both start from the same [`crate::plan::Boundary`]; neither
//! imports the other.

pub mod container;
pub mod sandbox;
