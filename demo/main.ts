// The demo's entry (index.html loads it): the app, and in the production build its service worker.
import './app.ts';
import { registerServiceWorker } from './pwa.ts';

if (import.meta.env.PROD) void registerServiceWorker();
