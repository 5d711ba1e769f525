// `npm run demo`: serves the demo (and the embedded tiny models) with Vite on localhost.
import { createServer } from 'vite';

const port = Number(process.env.PORT ?? 5173);
const server = await createServer({ server: { host: '127.0.0.1', port } });
await server.listen();
server.printUrls();
console.log('Open the URL in Chrome, Edge or Safari with WebGPU. Ctrl+C stops the server.');
