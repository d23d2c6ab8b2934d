//! Helpers for rules that most transforms need: whitespace clean-up, person names, dates and
//! timestamps, US postal codes and phone numbers, e-mail plausibility and code lists.
//!
//! Every helper is a plain function over `&str` (no WIT types), returns `None` for a value it
//! will not accept, and borrows from its input when it can so the common "already clean" case
//! costs no allocation.

mod codes;
mod contact;
mod date;
mod name;
mod text;

pub use codes::CodeList;
pub use contact::{
    US_STATE_CODES, UsPhone, normalize_phone, normalize_state, normalize_zip, plausible_email,
};
pub use date::{Date, Timestamp, days_in_month, is_leap_year};
pub use name::{fix_name_case, tidy_name};
pub use text::{collapse_whitespace, non_blank};
