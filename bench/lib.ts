/**
 * Shared pieces of the benchmark suite: fixtures, deterministic token ids, statistics and the
 * aligned text tables. Every speed result is a ratio of numbers measured in the same run.
 */
import { join } from 'node:path';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import type { GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';

export const MODELS_DIR = join(import.meta.dirname, '..', 'public', 'models');
export const FIXTURES = ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'] as const;
export type Fixture = (typeof FIXTURES)[number];

export function loadFixture(gpu: GpuContext, fixture: Fixture, kvBudgetBytes = 2 * 1024 * 1024): Promise<WebGpuBackend> {
  return WebGpuBackend.load(gpu, new FsModelSource(join(MODELS_DIR, fixture)), { modelId: fixture, kvBudgetBytes });
}

/** Deterministic pseudo-text: `n` token ids below 500 (every fixture's vocabulary is larger). */
export function ids(seed: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 53 + i * 29 + ((i * i) % 13) + ((i * seed) % 7)) % 500);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** `a / b` as "12.3x" (or "n/a"). */
export function ratio(a: number, b: number, digits = 2): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(digits)}x` : 'n/a';
}

export function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

export type Cell = string | number | boolean;

/** An aligned text table: a title, a one-line explanation, a header row, rows; numbers right-aligned. */
export function table(title: string, explanation: string, header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = (c: Cell): string => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(2)) : String(c));
  const cells = [header.map(String), ...rows.map((r) => r.map(text))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === '' || /^[-+]?[\d.]+(e[-+]?\d+)?\s*(x|%|ms|KiB|B)?$/.test(String(r[i]))));
  const line = (r: readonly string[]): string =>
    r.map((c, i) => (numeric[i] ? (c ?? '').padStart(widths[i]) : (c ?? '').padEnd(widths[i]))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [`== ${title}`, explanation, '', line(cells[0]), rule, ...cells.slice(1).map(line), ''].join('\n');
}

/** Time an async call in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}
