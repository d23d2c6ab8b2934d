//! Test module with one deliberate defect: see `Flaw::UsDateBefore1950` in tests/guests/flawed-common.rs.

const FLAW: Flaw = Flaw::UsDateBefore1950;

include!("../../flawed-common.rs");
