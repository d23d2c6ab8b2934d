//! Paths of the test suite's WebAssembly guests, built by this crate's build script. A
//! dev-dependency only: the production crates never see these modules.

/// The default `patients` module, as `reqsync init` writes it.
pub const PATIENTS: &str = env!("REQSYNC_PATIENTS_WASM");
/// The default `vaccine-doses` module.
pub const VACCINE_DOSES: &str = env!("REQSYNC_VACCINE_DOSES_WASM");
/// Misbehaves on demand (loops, traps, allocates, writes out of turn) to prove the sandbox
/// contains it.
pub const HOSTILE: &str = env!("REQSYNC_TEST_GUEST_HOSTILE");
/// Imports `wasi:filesystem`, which transforms never get: the host must refuse it at load.
pub const CAPABILITY: &str = env!("REQSYNC_TEST_GUEST_CAPABILITY");
/// Two versions of a module, for hot swap.
pub const SWAP_V1: &str = env!("REQSYNC_TEST_GUEST_SWAP_V1");
pub const SWAP_V2: &str = env!("REQSYNC_TEST_GUEST_SWAP_V2");
/// One deliberate defect each, for `reqsync transform test`.
pub const FLAWED_DATE: &str = env!("REQSYNC_TEST_GUEST_FLAWED_DATE");
pub const FLAWED_STATE: &str = env!("REQSYNC_TEST_GUEST_FLAWED_STATE");
pub const FLAWED_QUOTE: &str = env!("REQSYNC_TEST_GUEST_FLAWED_QUOTE");
pub const FLAWED_PANIC: &str = env!("REQSYNC_TEST_GUEST_FLAWED_PANIC");
pub const FLAWED_FIELD: &str = env!("REQSYNC_TEST_GUEST_FLAWED_FIELD");
pub const FLAWED_LONG_NAME: &str = env!("REQSYNC_TEST_GUEST_FLAWED_LONG_NAME");
/// Built against a retired WIT package.
pub const WIT_V1: &str = env!("REQSYNC_TEST_GUEST_WIT_V1");
/// Panics while the host asks it to describe itself.
pub const DESCRIBE_PANICS: &str = env!("REQSYNC_TEST_GUEST_DESCRIBE_PANICS");
