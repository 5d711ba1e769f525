import { defineConfig } from 'vite';

export default defineConfig({
  root: '.',
  // 'mpa': a missing model file must be a 404, not the SPA's index.html.
  appType: 'mpa',
  publicDir: 'public',
  server: { port: 5173, strictPort: false },
  worker: { format: 'es' },
  build: { target: 'es2022', outDir: 'dist' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
});
