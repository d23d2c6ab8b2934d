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
//!
//! # Rule helpers and native property tests
//!
//! [`rules`] holds the checks most transforms need, as plain functions over `&str` that return
//! `None` for a value they refuse and borrow when nothing changes:
//!
//! ```
//! use reqsync_guest::Date;
//! use reqsync_guest::rules::{self, CodeList};
//!
//! // Names: trimmed, whitespace collapsed, case fixed only when typed ALL UPPER or all lower.
//! assert_eq!(rules::tidy_name("  MARY-JANE   O'NEIL "), "Mary-Jane O'Neil");
//! assert_eq!(rules::tidy_name("van der Berg"), "van der Berg");
//! assert_eq!(rules::collapse_whitespace(" Ana \t Maria "), "Ana Maria");
//! assert_eq!(rules::non_blank(Some(" \t ")), None); // leave the field out
//!
//! // Dates, strictly YYYY-MM-DD, checked against the as-of date (`ctx.as_of_date()`).
//! let as_of = Date::ymd(2026, 1, 1);
//! let dob = Date::parse("2013-11-26").expect("a calendar date");
//! assert!(!dob.is_after(as_of) && !dob.is_before(Date::ymd(1900, 1, 1)));
//! assert_eq!(dob.age_on(as_of), Some(12));
//! assert_eq!(as_of.days_since(dob), 4419);
//! assert_eq!(Date::parse("11/26/2013"), None);
//!
//! // Contact details.
//! let phone = rules::normalize_phone("+1 (816) 555-0100").expect("a US number");
//! assert_eq!(phone.as_str(), "816-555-0100");
//! assert_eq!(rules::normalize_zip(" 64106-1234 "), Some("64106-1234"));
//! assert_eq!(rules::normalize_state(" mo "), Some("MO"));
//! assert_eq!(rules::plausible_email("n/a"), None);
//!
//! // Code lists, sorted at compile time and searched by binary search.
//! const CVX: CodeList<u16> = CodeList::new(&[3, 10, 20, 208]);
//! assert!(CVX.contains(&20) && !CVX.contains(&21));
//! ```
//!
//! The same functions run natively, so `cargo test` in a transform's crate can property-test
//! them, and the whole transform, with [`proptest`](https://docs.rs/proptest). Feature `testing`
//! (a dev-dependency) adds `testing::strategies` — names, dates, messy dates, phone numbers, ZIP
//! codes, blanks — and `testing::row` to build rows for `testing::run_row`:
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use proptest::prelude::*;
//! use reqsync_guest::rules::{normalize_phone, tidy_name};
//! use reqsync_guest::testing::strategies;
//!
//! proptest! {
//!     // #[test] here in a test file; this example calls it below.
//!     fn a_tidy_name_is_tidy(name in strategies::names()) {
//!         let tidy = tidy_name(&name);
//!         prop_assert_eq!(tidy.trim(), &*tidy);
//!         prop_assert!(!tidy.contains("  "));
//!         prop_assert_eq!(tidy_name(&tidy), &*tidy);
//!     }
//!
//!     fn every_accepted_spelling_gives_the_same_number(
//!         (number, spelling) in strategies::us_phone_numbers()
//!             .prop_flat_map(|n| (Just(n.clone()), strategies::phone_spellings(&n))),
//!     ) {
//!         let phone = normalize_phone(&spelling).map(|p| p.as_str().to_owned());
//!         prop_assert_eq!(phone, Some(number));
//!     }
//! }
//! # a_tidy_name_is_tidy();
//! # every_accepted_spelling_gives_the_same_number();
//! # }
//! ```
//!
//! A property of a whole transform runs rows through `testing::run_row` and asserts on the
//! outcome; `transforms/patients/tests/properties.rs` and
//! `transforms/vaccine-doses/tests/properties.rs` are complete examples, and
//! `guest-sdk/README.md` walks through one.

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
