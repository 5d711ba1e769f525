import { fileURLToPath } from 'node:url';
import { launch } from '/work/wt-shapes/bin/launch.mjs';
await launch(fileURLToPath(import.meta.url), new URL('./prof.ts', import.meta.url).href);
