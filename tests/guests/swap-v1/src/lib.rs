//! Hot-swap test module, version 1.

const VERSION: &str = "v1";

include!("../../swap-common.rs");
