//! Test module with one deliberate defect: see `Flaw::SlicesBytes` in tests/guests/flawed-common.rs.

const FLAW: Flaw = Flaw::SlicesBytes;

include!("../../flawed-common.rs");
