//! The analyst's kit: a transform module folder anywhere on disk, made by `reqsync transform
//! new` and built by `reqsync transform build`, with everything it needs to build (the WIT
//! world, the guest SDK of its language, the default modules to start from) shipped inside the
//! `reqsync` binary — no clone of the reqsync repository, no network beyond the language's own
//! package registry.

pub mod build;
pub mod files;
pub mod manifest;
pub mod scaffold;
pub mod sources;
pub mod toolchain;
