//! Column handles: how a row accessor finds its column without a name lookup per row.
//!
//! The host calls a module with batches of a few hundred rows and the goal is a wasm cost within
//! 2× of native, so per-row work must not include searching column names. The engine resolves
//! each *declared* input column to its batch column once per batch; a [`Col`] is a position in
//! the declared list, so a row accessor is two slice indexings.

/// A handle to one declared input column: its position in the column list it was declared in
/// (the `SPECS` of a [`columns!`](crate::columns) module), plus its name.
///
/// When that list is the module's [`ModuleInfo::input_columns`](crate::ModuleInfo::input_columns)
/// (the normal case) a lookup is one pointer comparison and an index. A handle used with another
/// list still finds its column, by name, just more slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Col {
    index: u16,
    name: &'static str,
    list: &'static [crate::ColumnSpec],
}

impl Col {
    /// Normally only called by [`columns!`](crate::columns). `list` must be a `static` (so its
    /// address identifies it) and `list[index]` the column named `name`.
    pub const fn new(index: u16, name: &'static str, list: &'static [crate::ColumnSpec]) -> Self {
        Self { index, name, list }
    }

    pub const fn name(self) -> &'static str {
        self.name
    }

    pub const fn index(self) -> usize {
        self.index as usize
    }
}

/// Anything that names a declared input column: a [`Col`] (constant time) or a `&str`
/// (searches the declared names; fine for quick scripts, avoid in hot code).
pub trait ColumnKey: Copy {
    /// Position of the column in `declared`, or `None` when the module did not declare it.
    fn position(self, declared: &[crate::ColumnSpec]) -> Option<usize>;
}

impl ColumnKey for Col {
    #[inline(always)]
    fn position(self, declared: &[crate::ColumnSpec]) -> Option<usize> {
        if std::ptr::eq(self.list, declared) {
            Some(self.index())
        } else {
            self.name.position(declared)
        }
    }
}

impl ColumnKey for &str {
    fn position(self, declared: &[crate::ColumnSpec]) -> Option<usize> {
        declared.iter().position(|spec| spec.name == self)
    }
}

/// Declares the input columns a module reads, as a module holding one [`Col`] constant per
/// column and `SPECS`, the list to put in
/// [`ModuleInfo::input_columns`](crate::ModuleInfo::input_columns).
///
/// ```
/// use reqsync_guest::{Presence, ValueHint};
///
/// reqsync_guest::columns! {
///     /// Columns of the `mpfile` query.
///     pub mod input {
///         patno: Integer, required;
///         lname: Text, required;
///         birth_date: Date, required;
///         joined_patno: Integer, nullable;
///         email: Text => [ValueHint::MaxLength(80)];
///         sex: Text => [ValueHint::OneOf(&["F", "M", "U"])];
///     }
/// }
///
/// # fn main() {
/// assert_eq!(input::SPECS.len(), 6);
/// assert_eq!(input::birth_date.name(), "birth_date");
/// assert_eq!(input::SPECS[3].presence, Presence::Nullable);
/// assert_eq!(input::SPECS[4].presence, Presence::Optional);
/// assert_eq!(input::SPECS[5].hints, &[ValueHint::OneOf(&["F", "M", "U"])]);
/// # }
/// ```
///
/// Column names must be Rust identifiers, which the clinic schema's lower-case names are. The
/// kind is a [`ColumnType`](crate::ColumnType) variant, optionally followed by `required` or
/// `nullable` (see [`Presence`](crate::Presence)); without either the column is optional. An
/// optional `=> [..]` lists [`ValueHint`](crate::ValueHint)s: what valid values look like, so
/// `reqsync transform test` generates rows that reach the module's emit paths.
#[macro_export]
macro_rules! columns {
    (
        $(#[$meta:meta])*
        $vis:vis mod $module:ident {
            $( $column:ident : $kind:ident $(, $presence:ident)? $(=> [$($hint:expr),* $(,)?])? ; )*
        }
    ) => {
        $(#[$meta])*
        #[allow(non_upper_case_globals, dead_code)]
        $vis mod $module {
            // Hint expressions are written at the invocation site and may name its items (a
            // code list, `ValueHint`), so they must resolve here too.
            #[allow(unused_imports)]
            use super::*;

            // The discriminants number the columns in declaration order, so each `Col` knows
            // its position in `SPECS` without the macro having to count.
            #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
            #[repr(u16)]
            enum __Position {
                $( $column, )*
            }

            $(
                #[doc = concat!("Input column `", stringify!($column), "`.")]
                pub const $column: $crate::Col =
                    $crate::Col::new(__Position::$column as u16, stringify!($column), &__SPECS);
            )*

            const __COUNT: usize = [$( stringify!($column) ),*].len();

            // A named `static`: its one address is how a `Col` recognises the list it indexes
            // (a `const` or a promoted literal may be duplicated wherever it is used).
            static __SPECS: [$crate::ColumnSpec; __COUNT] = [
                $(
                    $crate::ColumnSpec::new(
                        stringify!($column),
                        $crate::ColumnType::$kind,
                        $crate::__column_presence!($($presence)?),
                    )
                    .with_hints(&[$($($hint),*)?]),
                )*
            ];

            /// The declared input columns, in declaration order: what the module's
            /// `ModuleInfo::input_columns` should hold.
            pub static SPECS: &[$crate::ColumnSpec] = &__SPECS;
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __column_presence {
    () => {
        $crate::Presence::Optional
    };
    (required) => {
        $crate::Presence::Required
    };
    (nullable) => {
        $crate::Presence::Nullable
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ColumnSpec, ColumnType, Presence};

    crate::columns! {
        mod input {
            a: Integer, required;
            b: Text;
        }
    }

    #[test]
    fn a_handle_recognises_its_own_list_by_address() {
        // The fast path: the handle and the list are the same static.
        assert!(std::ptr::eq(input::b.list, input::SPECS));
        assert_eq!(input::b.position(input::SPECS), Some(1));
    }

    #[test]
    fn a_handle_used_with_another_list_falls_back_to_its_name() {
        let other = [
            ColumnSpec::new("b", ColumnType::Text, Presence::Optional),
            ColumnSpec::new("a", ColumnType::Integer, Presence::Required),
        ];
        assert_eq!(input::b.position(&other), Some(0));
        assert_eq!(input::a.position(&other[..1]), None);
        assert_eq!("a".position(input::SPECS), Some(0));
    }
}
