/**
 * Regenerates the demo's generated assets:
 *   npx tsx tools/make-demo-assets.ts
 * - demo/local-models.json: the models the app serves itself (embedded trained model, tiny
 *   fixtures, GGUF fixtures) with their byte sizes, read from public/models/;
 * - public/icons/icon-{192,512}.png and maskable-512.png: the PWA icons (drawn here, PNG encoded
 *   with node:zlib), so nothing binary is hand-made.
 */
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

const MODELS = 'public/models';

interface LocalModel {
  readonly id: string;
  readonly label: string;
  readonly source: string;
  readonly bytes: number;
  readonly kind: 'embedded' | 'fixture';
}

function folderBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

function localModels(): LocalModel[] {
  const folders = readdirSync(MODELS).filter((d) => statSync(join(MODELS, d)).isDirectory() && d !== 'gguf').sort();
  const embedded = 'shakespeare-llama';
  const byFolder = folders.map((d): LocalModel => ({
    id: d,
    label: d === embedded ? 'Shakespeare (trained, embedded)' : `${d} (random fixture)`,
    source: `/models/${d}/`,
    bytes: folderBytes(join(MODELS, d)),
    kind: d === embedded ? 'embedded' : 'fixture',
  }));
  const gguf = readdirSync(join(MODELS, 'gguf')).filter((f) => f.endsWith('.gguf')).sort().map((f): LocalModel => ({
    id: f.replace(/\.gguf$/, ''),
    label: `${f} (GGUF fixture)`,
    source: `/models/gguf/${f}`,
    bytes: statSync(join(MODELS, 'gguf', f)).size,
    kind: 'fixture',
  }));
  return [...byFolder.filter((m) => m.kind === 'embedded'), ...byFolder.filter((m) => m.kind !== 'embedded'), ...gguf];
}

// ---- PNG icons ------------------------------------------------------------------------------

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function png(size: number, pixel: (x: number, y: number) => readonly [number, number, number]): Buffer {
  const raw = Buffer.alloc(size * (size * 3 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) raw.set(pixel(x, y), y * (size * 3 + 1) + 1 + x * 3);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', new Uint8Array())]);
}

/** The logo: a 4x4 grid of KV blocks on ink blue, a few shared (amber) and owned (teal) ones. */
function icon(size: number, inset: number): Buffer {
  const bg = [22, 33, 62] as const;
  const colours = [[45, 212, 191], [45, 212, 191], [251, 191, 36], [251, 191, 36], [96, 165, 250], [45, 212, 191], [251, 191, 36], [71, 85, 105],
    [96, 165, 250], [96, 165, 250], [71, 85, 105], [71, 85, 105], [71, 85, 105], [71, 85, 105], [71, 85, 105], [71, 85, 105]] as const;
  const area = size * (1 - 2 * inset);
  const cell = area / 4;
  return png(size, (x, y) => {
    const gx = (x - size * inset) / cell;
    const gy = (y - size * inset) / cell;
    if (gx < 0 || gy < 0 || gx >= 4 || gy >= 4) return bg;
    const fx = gx % 1;
    const fy = gy % 1;
    if (fx < 0.1 || fx > 0.9 || fy < 0.1 || fy > 0.9) return bg;
    return colours[Math.floor(gy) * 4 + Math.floor(gx)];
  });
}

writeFileSync('demo/local-models.json', `${JSON.stringify({ generatedBy: 'tools/make-demo-assets.ts', models: localModels() }, null, 2)}\n`);
writeFileSync('public/icons/icon-192.png', icon(192, 0.12));
writeFileSync('public/icons/icon-512.png', icon(512, 0.12));
writeFileSync('public/icons/maskable-512.png', icon(512, 0.22));
console.log('wrote demo/local-models.json and public/icons/*.png');
