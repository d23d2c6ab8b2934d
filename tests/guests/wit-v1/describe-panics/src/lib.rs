//! A module of the current WIT world (`guest-sdk/wit`) whose `describe` panics: it instantiates,
//! then traps in the first call the host makes while loading it. The host must stop the run
//! before anything is sent, naming the module and `describe`.

#![allow(unsafe_code)] // the generated ABI glue

wit_bindgen::generate!({
    world: "transform",
    path: "../../../../guest-sdk/wit",
});

struct PanicsOnLoad;

impl Guest for PanicsOnLoad {
    fn describe() -> ModuleInfo {
        panic!("deliberate panic while describing the module")
    }

    fn transform(_context: BatchContext, _batch: RowBatch) -> Result<BatchResult, BatchError> {
        panic!("never reached: describe() panics first")
    }
}

export!(PanicsOnLoad);
