//! Fuzz targets for Unmask's parsers of untrusted bytes (see docs/reliability.md): the entry
//! points, shared with the native regression test, and the allocation guard.

pub mod entry;
pub mod guard;
