// Builds a JavaScript transform into a WebAssembly component of reqsync's WIT world.
//
//     node build.mjs SOURCE.js WIT_DIR OUT.wasm
//
// Run by scripts/build-guest-javascript from the folder holding node_modules (the script copies
// this file there, so `@bytecodealliance/componentize-js` resolves without node_modules in the
// source tree). It calls componentize-js's API: its `jco componentize` command fails on these
// machines ("failed to get path metadata … os error 44").

import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { componentize } from '@bytecodealliance/componentize-js';

const [sourcePath, witPath, outPath] = process.argv.slice(2);
if (outPath === undefined) {
  console.error('usage: node build.mjs SOURCE.js WIT_DIR OUT.wasm');
  process.exit(2);
}

const { component } = await componentize({
  sourcePath: resolve(sourcePath),
  witPath: resolve(witPath),
  worldName: 'transform',
  // The engine's WASI features each add imports (console → stdio, Math.random → random,
  // Date.now → clocks, fetch → http). reqsync's sandbox refuses a module that imports files,
  // sockets or HTTP at load, and a transform needs none of them: with all disabled the
  // component imports only `reqsync:transform/types`. The price: console.log goes nowhere, and
  // there is no clock or randomness (rules compare against ctx.asOfDate instead).
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});
await writeFile(outPath, component);
