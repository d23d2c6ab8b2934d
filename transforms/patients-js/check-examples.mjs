// A quick check while editing rules: runs the example cases through patients.js in Node.js,
// without building the component, in well under a second.
//
//     node transforms/patients-js/check-examples.mjs [EXAMPLES.json]
//
// (default: transforms/patients/examples.json, the Rust module's cases, which this module must
// pass too). The work is done by guest-sdk/javascript/example-runner.mjs; the e2e tests on the
// built component (README.md) are the real gate.

import { fileURLToPath } from 'node:url';
import { runExamples } from '../../guest-sdk/javascript/example-runner.mjs';
import * as patients from './patients.js';

const spec = fileURLToPath(new URL('../patients/examples.json', import.meta.url));
process.exit((await runExamples(patients, process.argv[2] ?? spec)) === 0 ? 0 : 1);
