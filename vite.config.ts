import { defineConfig } from 'vite';
import { serviceWorker } from './scripts/service-worker-plugin.ts';

export default defineConfig({
  root: '.',
  // 'mpa': a missing model file must be a 404, not the SPA's index.html.
  appType: 'mpa',
  publicDir: 'public',
  server: { port: 5173, strictPort: false },
  preview: { port: 4173, strictPort: false },
  worker: { format: 'es' },
  // `npm run build:demo` writes the demo to dist-demo/ (the library build writes dist/).
  build: { target: 'es2022', outDir: 'dist' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  // The production demo works offline: the app shell and the embedded model are precached.
  // onnxruntime-web's wasm (pulled in by transformers.js, whose tokenizers need no ONNX) and the
  // raw copy of the worker's source (the client's default worker URL) are never fetched.
  plugins: [serviceWorker({ publicPaths: ['manifest.webmanifest', 'icons', 'models/shakespeare-llama'], exclude: /\.(wasm|ts)$/ })],
});
