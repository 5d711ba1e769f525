#!/usr/bin/env node
// Load a model folder onto the GPU in a fresh process and print its RSS high-water marks
// (tools/load-peak.ts): `node tools/load-peak.mjs <model dir> [stream|whole]`.
import { fileURLToPath } from 'node:url';
import { launch } from '../bin/launch.mjs';

await launch(fileURLToPath(import.meta.url), new URL('./load-peak.ts', import.meta.url).href);
