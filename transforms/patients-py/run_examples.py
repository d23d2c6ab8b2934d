"""Runs example cases through the `patients` module natively, with ordinary Python tracebacks.

    scripts/build-guest-python            # also writes the WIT bindings this needs
    target/guest-toolchains/python/bin/python transforms/patients-py/run_examples.py [FILE]

FILE defaults to the Rust module's cases (transforms/patients/examples.json), the spec this module
must pass. The work is done by guest-sdk/python/example_runner.py, shared by every Python module.
Not part of the component (the build leaves this file out).
"""

import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source folder
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# This folder before guest-sdk/python: `app` and the links to the glue are found here.
sys.path[:0] = [
    str(REPO / "target/guest-toolchains/python/bindings"),
    str(HERE),
    str(REPO / "guest-sdk/python"),
]

import example_runner  # noqa: E402

sys.exit(example_runner.main(REPO / "transforms/patients/examples.json"))
