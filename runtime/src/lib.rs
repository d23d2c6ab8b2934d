//! reqsync: keeps ReqCheck fed from a clinic database.
//!
//! The modules follow a row through the pipeline: it is *read* ([`source`]), *transformed* by a
//! sandboxed WebAssembly module ([`transform`]), *rendered* into a request body ([`render`]) and
//! *sent* ([`reqcheck`]); [`pipeline`] wires one job's run together, recording it in the
//! [`ledger`] and the [`audit`] trail. [`daemon`] runs the jobs on their schedules; [`status`]
//! and [`notify`] tell operators how the last runs went.
//!
//! The `reqsync` binary (`cli/`) is a thin command line over this crate; the development
//! receiver (`reqsync-receiver`) and the test-data seeder (`reqsync-seeder`) are crates of their
//! own. docs/ARCHITECTURE.md shows how they fit together.

pub mod audit;
pub mod config;
pub mod daemon;
pub mod input_file;
pub(crate) mod json_shape;
pub mod ledger;
pub mod native_path;
pub mod notify;
pub mod pipeline;
pub(crate) mod redact;
pub mod render;
pub mod reqcheck;
pub(crate) mod resource;
pub(crate) mod secret_file;
pub mod secret_store;
pub mod source;
pub mod status;
pub mod transform;
pub mod windows_accounts;
