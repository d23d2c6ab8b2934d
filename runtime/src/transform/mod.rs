//! The sandboxed WebAssembly transform host.
//!
//! [`engine`] owns the wasmtime policy and, through [`module_cache`], the compiled-module cache; [`TransformInstance`] runs batches
//! through one module; [`BatchPlan`] turns source rows into the module's columnar input; and
//! [`examples`] checks a module against the example cases shipped beside it.

mod bindings;
mod columnar;
mod declared;
mod engine;
pub mod examples;
mod info;
mod instance;
pub mod json_rows;
mod json_string;
mod live;
mod module_cache;
mod outcome;
pub mod property;
mod record;
pub mod registry;

use std::path::PathBuf;

pub use bindings::WIT_PACKAGE;
pub(crate) use columnar::parse_timestamp;
pub use columnar::{BatchPlan, localize};
pub use declared::{FieldLists, RecordWriterForBenchmarks};
pub use engine::{CompiledModule, SandboxLimits, TransformEngine};
pub use info::{ColumnKind, ColumnSpec, FieldSpec, ModuleInfo, ValueHint};
pub use instance::TransformInstance;
pub use live::LiveTransform;
pub use module_cache::{CacheError, ModuleCache};
pub use outcome::{Finding, RowOutcome, Verdict, host_codes};
pub(crate) use record::Inner as RecordInner;
pub use record::Record;
pub use registry::{ModuleRegistry, ModuleSlot, SwapReport};

/// Errors of the transform host. Each names the module file and what to do; none carries row
/// values.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot read transform module {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error(
        "{} is not a valid WebAssembly component: {reason} (build transforms with \
         `cargo build --target wasm32-wasip2 --release`)",
        path.display()
    )]
    NotAComponent { path: PathBuf, reason: String },
    #[error(
        "transform module {} imports {imports:?}, which the sandbox does not grant (transforms get \
         no files, network or environment; only wasi:io, wasi:cli streams, frozen clocks and \
         seeded randomness)",
        path.display()
    )]
    ForbiddenImport { path: PathBuf, imports: Vec<String> },
    #[error(
        "transform module {} was built against {found}, but this reqsync speaks {}: rebuild it \
         with the guest SDK of this release (`guest-sdk/wit/transform.wit`)",
        path.display(),
        bindings::WIT_PACKAGE
    )]
    WitVersion { path: PathBuf, found: String },
    #[error("cannot instantiate transform module {}: {reason}", path.display())]
    Instantiate { path: PathBuf, reason: String },
    #[error("transform module {} trapped in `{func}`: {reason}", path.display())]
    Trap {
        path: PathBuf,
        func: String,
        reason: String,
    },
    #[error(
        "transform module {} did not finish `{func}` within its deadline (raise \
         `transform_deadline_ms` if the batch is legitimately slow)",
        path.display()
    )]
    Timeout { path: PathBuf, func: String },
    #[error("transform module `{module}` refused the batch: {code}: {message}")]
    BatchRefused {
        module: String,
        code: String,
        message: String,
    },
    #[error("transform module `{module}` broke the WIT contract: {reason}")]
    BadOutput { module: String, reason: String },
    #[error(
        "the query does not return column(s) {missing:?} that transform module `{module}` needs \
         (the query returns {available:?})"
    )]
    ColumnsMissing {
        module: String,
        missing: Vec<String>,
        available: Vec<String>,
    },
    #[error(
        "query column `{column}` is `{declared}` (bytes), which transform module `{module}` \
         cannot read as {wanted}: convert it in the query (PostgreSQL: `convert_from({column}, \
         'UTF8')` for text stored as bytes, `encode({column}, 'hex')` for hexadecimal)"
    )]
    BinaryColumn {
        module: String,
        column: String,
        declared: String,
        wanted: String,
    },
}
