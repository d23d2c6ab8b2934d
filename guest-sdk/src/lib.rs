//! What a reqsync transform author uses.
//!
//! A transform module maps rows of one source query to records of one ReqCheck endpoint. The
//! host hands the module a columnar batch (see `wit/transform.wit`); this crate hides that
//! shape so an author writes plain Rust over one row at a time:
//!
//! ```
//! use reqsync_guest::{columns, Context, FieldSpec, ModuleInfo, Outcome, RecordWriter, Row, Transform};
//!
//! columns! {
//!     /// The columns of the `mpfile` query this module reads.
//!     pub mod input {
//!         patno: Integer, required;
//!         lname: Text, required;
//!         email: Text;
//!     }
//! }
//!
//! const OUTPUT: &[FieldSpec] = &[FieldSpec::required("patient_number"), FieldSpec::optional("email")];
//!
//! struct Patients;
//!
//! impl Transform for Patients {
//!     fn info() -> ModuleInfo {
//!         ModuleInfo {
//!             name: "patients",
//!             version: "1.0.0",
//!             target: "patient_data",
//!             key_column: "patno",
//!             input_columns: input::SPECS,
//!             output_fields: OUTPUT,
//!         }
//!     }
//!
//!     fn row(row: &Row<'_>, ctx: &Context, out: &mut RecordWriter) -> Outcome {
//!         let Some(patno) = row.int(input::patno) else {
//!             return Outcome::reject_one("patient_number", "missing", "patient number is NULL");
//!         };
//!         out.int("patient_number", patno);
//!         Outcome::emit()
//!     }
//! }
//!
//! reqsync_guest::export_transform!(Patients);
//! ```
//!
//! Build the component with `cargo build -p <crate> --target wasm32-wasip2 --release`; test it
//! natively with `reqsync_guest::testing` (feature `testing`), which drives exactly the code path the
//! component runs.
//!
//! **PHI:** findings, skip reasons and batch errors end up in logs and reports. Their messages are
//! `&'static str` on purpose, so a row value cannot be formatted into one by accident.

mod columns;
mod engine;
mod row;
pub mod rules;
#[cfg(feature = "testing")]
pub mod testing;
mod types;
mod writer;

pub use columns::{Col, ColumnKey};
pub use row::{Cell, Row};
pub use rules::Date;
pub use types::{
    ColumnSpec, ColumnType, Context, FieldSpec, Finding, ModuleInfo, Outcome, Presence, ValueHint,
};
pub use writer::RecordWriter;

/// The generated WIT bindings of world `reqsync:transform/transform`.
///
/// Public only because [`export_transform!`] expands in the author's crate and must name them;
/// authors never need to touch these types.
#[doc(hidden)]
#[allow(unsafe_code, missing_debug_implementations)] // generated ABI glue is unsafe by nature
pub mod bindings {
    wit_bindgen::generate!({
        world: "transform",
        path: "wit",
        // The export macro is invoked from the transform crates, not from here.
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "reqsync_guest::bindings",
    });
}

/// Implementation details used by [`export_transform!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::engine::{describe, transform};
}

/// The one thing a transform author implements.
///
/// `row` is called once per input row, in order, and answers with an [`Outcome`]. Fields written
/// to `out` for a row that ends up skipped or rejected are discarded, so a transform may write
/// as it validates and bail out at any point.
pub trait Transform {
    /// What the module is, what it reads and what it may emit. Called when the host loads the
    /// module and once per batch (to check the batch against the declared input columns).
    fn info() -> ModuleInfo;

    /// Maps one row. `ctx` carries the per-batch facts from the host (the as-of date).
    fn row(row: &Row<'_>, ctx: &Context, out: &mut RecordWriter) -> Outcome;
}

/// Exports a [`Transform`] implementation as the component's `describe` and `transform`.
///
/// Call it once, at the crate root of a `cdylib` crate:
/// `reqsync_guest::export_transform!(MyTransform);`
///
/// The ABI symbols are only emitted for wasm targets: natively the crate is a plain library
/// (tested through `reqsync_guest::testing`), and two transform crates can then be linked into one native
/// test binary without clashing `transform` symbols.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        #[allow(unsafe_code)] // the ABI shims wit-bindgen generates
        const _: () = {
            #[allow(dead_code)] // only constructed by the wasm ABI shims
            struct __ReqsyncExport;

            impl $crate::bindings::Guest for __ReqsyncExport {
                fn describe() -> $crate::bindings::ModuleInfo {
                    $crate::__private::describe::<$ty>()
                }

                fn transform(
                    context: $crate::bindings::BatchContext,
                    batch: $crate::bindings::RowBatch,
                ) -> ::core::result::Result<
                    $crate::bindings::BatchResult,
                    $crate::bindings::BatchError,
                > {
                    $crate::__private::transform::<$ty>(&context, &batch)
                }
            }

            #[cfg(target_arch = "wasm32")]
    $crate::bindings::export!(__ReqsyncExport with_types_in $crate::bindings);
        };
    };
}
