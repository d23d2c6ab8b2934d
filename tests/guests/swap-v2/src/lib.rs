//! Hot-swap test module, version 2.

const VERSION: &str = "v2";

include!("../../swap-common.rs");
