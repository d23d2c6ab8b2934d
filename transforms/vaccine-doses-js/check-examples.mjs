// A quick check while editing rules: runs the example cases through vaccine-doses.js in Node.js,
// without building the component, in well under a second.
//
//     node transforms/vaccine-doses-js/check-examples.mjs [EXAMPLES.json]
//
// (default: transforms/vaccine-doses/examples.json, the Rust module's cases, which this module
// must pass too). It first brings cvx-codes.js up to date with the CSV. The work is done by
// guest-sdk/javascript/example-runner.mjs; the e2e tests on the built component (README.md) are
// the real gate.

import { fileURLToPath } from 'node:url';
import { runExamples } from '../../guest-sdk/javascript/example-runner.mjs';
import './generate-cvx-codes.mjs';

// Imported once the list is generated: a static import would be loaded (and fail while
// cvx-codes.js does not exist yet) before any code here runs.
const doses = await import('./vaccine-doses.js');
const spec = fileURLToPath(new URL('../vaccine-doses/examples.json', import.meta.url));
process.exit((await runExamples(doses, process.argv[2] ?? spec)) === 0 ? 0 : 1);
