// Finds a Chromium with WebGPU for the browser tests, installing Debian's package when allowed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'];

/** Flags that make headless Chromium expose WebGPU (SwiftShader) and stay off the network. */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function findChromium() {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return CANDIDATES.find((p) => existsSync(p)) ?? null;
}

function canApt() {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return isRoot && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
}

/** Returns the Chromium path, installing it with apt-get when absent; exits with a clear message when it cannot. */
export function ensureChromium() {
  const found = findChromium();
  if (found) return found;
  if (process.env.SEMANTIC_NO_INSTALL !== '1' && canApt()) {
    console.log('[semantic] Chromium not found: installing Debian package "chromium" with apt-get ...');
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium'], {
      stdio: 'inherit',
    });
    const installed = findChromium();
    if (installed) return installed;
  }
  console.error(
    '[semantic] Chromium is missing. The browser tests need Debian\'s "chromium" package ' +
      '(apt-get install -y chromium, as root) or CHROMIUM_PATH pointing to a Chromium binary.',
  );
  process.exit(1);
}

/** Environment that lets Dawn (npm "webgpu") find Chromium's SwiftShader Vulkan driver in Node. */
export function swiftShaderEnv(env = process.env) {
  const icd = '/usr/lib/chromium/vk_swiftshader_icd.json';
  if (env.VK_ICD_FILENAMES || !existsSync(icd)) return env;
  const ld = env.LD_LIBRARY_PATH ? `/usr/lib/chromium:${env.LD_LIBRARY_PATH}` : '/usr/lib/chromium';
  return { ...env, VK_ICD_FILENAMES: icd, LD_LIBRARY_PATH: ld };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(ensureChromium());
}
