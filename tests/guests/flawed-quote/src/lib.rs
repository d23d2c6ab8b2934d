//! Test module with one deliberate defect: see `Flaw::QuotesValue` in tests/guests/flawed-common.rs.

const FLAW: Flaw = Flaw::QuotesValue;

include!("../../flawed-common.rs");
