#!/usr/bin/env node
// `npm run bench`: the benchmark suite (bench/main.ts) on real WebGPU in Node (Dawn).
// Arguments pass through to bench/main.ts (e.g. `npm run bench -- --only=memory,quant`).
import { fileURLToPath } from 'node:url';
import { launch } from '../bin/launch.mjs';

await launch(fileURLToPath(import.meta.url), new URL('../bench/main.ts', import.meta.url).href);
