//! Test module with one deliberate defect: see `Flaw::CountsRows` in tests/guests/flawed-common.rs.

const FLAW: Flaw = Flaw::CountsRows;

include!("../../flawed-common.rs");
