import { defineConfig } from 'vite';

export default defineConfig({
  root: '.',
  publicDir: 'public',
  server: { port: 5173, strictPort: false },
  worker: { format: 'es' },
  build: { target: 'es2022', outDir: 'dist' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
});
