#!/usr/bin/env node
// `semantic` CLI: WebGPU in Node through Dawn (see launch.mjs for the driver setup).
import { fileURLToPath } from 'node:url';
import { launch } from './launch.mjs';

await launch(fileURLToPath(import.meta.url), new URL('../cli/semantic.ts', import.meta.url).href);
