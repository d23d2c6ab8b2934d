//! Test module with one deliberate defect: see `Flaw::UndeclarableField` in tests/guests/flawed-common.rs.

const FLAW: Flaw = Flaw::UndeclarableField;

include!("../../flawed-common.rs");
