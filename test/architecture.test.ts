import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Layer rules from DESIGN.md, checked on the import statements of every source file. */
const ROOT = resolve(import.meta.dirname, '..');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : /\.(ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of source.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)) {
    specs.push(m[1] ?? m[2] ?? m[3]);
  }
  return specs;
}

function layerOf(path: string): string {
  const rel = relative(ROOT, path).split('/');
  if (rel[0] === 'src') return rel[1] === 'adapters' ? `adapters/${rel[2]}` : rel[1];
  return rel[0];
}

const ALLOWED: Record<string, (target: string) => boolean> = {
  domain: (t) => t === 'domain',
  ports: (t) => t === 'domain' || t === 'ports',
  application: (t) => ['domain', 'ports', 'application'].includes(t),
  client: (t) => ['domain', 'ports', 'client'].includes(t),
};

/**
 * An adapter uses domain, ports and its own library. The safetensors codec counts as the format
 * library of every adapter that reads weights or cache blobs, so it may be imported by them.
 */
const ADAPTER_TARGETS = (from: string): string[] => ['domain', 'ports', from, 'adapters/safetensors'];

describe('architecture', () => {
  const files = walk(join(ROOT, 'src'));

  it('src/domain imports nothing outside the domain: no DOM, WebGPU, idb or node APIs', () => {
    const offenders: string[] = [];
    for (const file of files.filter((f) => layerOf(f) === 'domain')) {
      const source = readFileSync(file, 'utf8');
      for (const spec of importsOf(file)) if (!spec.startsWith('./')) offenders.push(`${relative(ROOT, file)} imports ${spec}`);
      const code = source.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
      for (const global of ['navigator', 'document', 'window', 'indexedDB', 'process', 'self', 'GPUBuffer', 'GPUDevice']) {
        if (new RegExp(`(?<![\\w.'"])${global}\\b(?!['"])\\s*[.[:<]`).test(code)) {
          offenders.push(`${relative(ROOT, file)} uses ${global}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it('dependencies point inward', () => {
    const offenders: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('.')) continue;
        const target = layerOf(resolve(dirname(file), spec));
        const rule = ALLOWED[from];
        const ok = rule ? rule(target) : from.startsWith('adapters/') ? ADAPTER_TARGETS(from).includes(target) : true;
        if (!ok) offenders.push(`${relative(ROOT, file)} (${from}) imports ${spec} (${target})`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('library code throws typed errors, never a bare Error', () => {
    const offenders = files.filter((f) => /throw new Error\(/.test(readFileSync(f, 'utf8'))).map((f) => relative(ROOT, f));
    expect(offenders).toEqual([]);
  });
});

describe('the demo', () => {
  it('uses only the public client API (src/client/index.ts), Lit and its own files', () => {
    const demo = join(ROOT, 'demo');
    const offenders: string[] = [];
    for (const file of walk(demo)) {
      for (const spec of importsOf(file)) {
        const ok = spec === 'lit' || (spec.startsWith('./') && !spec.includes('..')) || resolve(dirname(file), spec) === join(ROOT, 'src', 'client', 'index.ts');
        if (!ok) offenders.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
