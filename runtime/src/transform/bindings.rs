//! Host bindings of the transform WIT world (`guest-sdk/wit/transform.wit`).

wasmtime::component::bindgen!({
    world: "transform",
    path: "../guest-sdk/wit",
});

pub use self::reqsync::transform::types as wit;

/// The WIT package version this host speaks; modules built against another are refused.
pub const WIT_PACKAGE: &str = "reqsync:transform@3.0.0";
