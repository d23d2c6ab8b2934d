//! reqsync: keeps ReqCheck fed from a clinic database.
//!
//! The modules follow a row through the pipeline: it is *read* ([`source`]), *transformed* by a
//! sandboxed WebAssembly module ([`transform`]), *rendered* into a request body ([`render`]) and
//! *sent* ([`reqcheck`]); [`pipeline`] wires one job's run together. [`receiver`] is the
//! ReqCheck-compatible development endpoint and [`seed`] builds clinic databases for demos and
//! tests. [`daemon`] runs the jobs on their schedules.

pub mod audit;
pub mod config;
pub mod daemon;
pub mod input_file;
pub(crate) mod iso_text;
pub(crate) mod json_shape;
pub mod ledger;
pub mod native_path;
pub mod notify;
pub mod pipeline;
pub mod private_fs;
pub mod project;
pub mod receiver;
pub mod redact;
pub mod render;
pub mod reqcheck;
pub mod resource;
pub mod secret_file;
pub mod secret_store;
pub mod seed;
pub mod source;
pub mod status;
pub mod transform;
pub mod windows_accounts;
#[cfg(windows)]
pub(crate) mod windows_acl;
