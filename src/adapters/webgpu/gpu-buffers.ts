import { InternalError, InvalidRequestError } from '../../domain/errors.ts';
import { MAP_READ_MODE, STORAGE_RW as STORAGE, Usage } from './usage.ts';

/**
 * The one owner of every GPUBuffer the runtime creates. Transient buffers are recycled by size
 * class (power of two) and usage; long-lived ones (weights, KV pools) are created exactly. Every
 * buffer is labelled. `reuse: false` (or the debug switch) destroys instead of recycling, which
 * exposes use-after-release bugs that reuse would hide.
 */
/** What a buffer is for, so memory can be reported by category (gpu_bytes). */
export type GpuBufferCategory = 'weights' | 'kv_pool' | 'activations';

export interface GpuBufferStats {
  /** Bytes allocated on the device by category, live and recycled ('activations' covers every transient). */
  readonly byCategory: Readonly<Record<GpuBufferCategory, number>>;
  readonly liveBuffers: number;
  readonly liveBytes: number;
  readonly pooledBuffers: number;
  readonly pooledBytes: number;
  readonly peakBytes: number;
}


let debugNoReuse = false;

/** Debug switch: turn buffer reuse off process-wide (also `globalThis.SEMANTIC_NO_BUFFER_REUSE = true`). */
export function setBufferReuseDebug(disableReuse: boolean): void {
  debugNoReuse = disableReuse;
}

function reuseDisabled(): boolean {
  return debugNoReuse || (globalThis as { SEMANTIC_NO_BUFFER_REUSE?: boolean }).SEMANTIC_NO_BUFFER_REUSE === true;
}

function sizeClass(bytes: number): number {
  return Math.max(256, 2 ** Math.ceil(Math.log2(bytes)));
}

export class GpuBuffers {
  private readonly live = new Map<GPUBuffer, { bytes: number; pooled: boolean; category: GpuBufferCategory }>();
  private readonly categoryBytes: Record<GpuBufferCategory, number> = { weights: 0, kv_pool: 0, activations: 0 };
  private readonly pool = new Map<string, GPUBuffer[]>();
  private liveBytes = 0;
  private pooledBytes = 0;
  private peakBytes = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly options: { readonly reuse?: boolean } = {},
  ) {}

  private get reuse(): boolean {
    return this.options.reuse !== false && !reuseDisabled();
  }

  /** A buffer of exactly `bytes` (rounded up to 4), never recycled: weights, KV pools. */
  createExact(label: string, bytes: number, usage: GPUBufferUsageFlags = STORAGE, category: GpuBufferCategory = 'activations'): GPUBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    if (!Number.isFinite(size) || size > this.device.limits.maxBufferSize) {
      throw new InvalidRequestError(`buffer ${label} of ${bytes} bytes exceeds maxBufferSize`, { bytes, limit: this.device.limits.maxBufferSize });
    }
    const buffer = this.device.createBuffer({ label, size, usage });
    this.track(buffer, size, false, category);
    return buffer;
  }

  /** A transient buffer of at least `bytes`, recycled by size class when released. */
  acquire(label: string, bytes: number, usage: GPUBufferUsageFlags = STORAGE): GPUBuffer {
    const size = sizeClass(bytes);
    const key = `${usage}:${size}`;
    const recycled = this.reuse ? this.pool.get(key)?.pop() : undefined;
    if (recycled) {
      this.pooledBytes -= size;
      recycled.label = label;
      this.track(recycled, size, true, 'activations');
      return recycled;
    }
    const buffer = this.device.createBuffer({ label, size, usage });
    this.categoryBytes.activations += size;
    this.track(buffer, size, true, 'activations');
    return buffer;
  }

  /** A buffer holding `data`, created exactly (uploads of weights and tables). */
  upload(label: string, data: ArrayBufferView, usage: GPUBufferUsageFlags = STORAGE, category: GpuBufferCategory = 'activations'): GPUBuffer {
    const buffer = this.createExact(label, data.byteLength, usage | Usage.COPY_DST, category);
    this.write(buffer, data);
    return buffer;
  }

  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    // writeBuffer needs a multiple of 4 bytes; pad a copy when the view is not.
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const padded = bytes.byteLength % 4 === 0 ? bytes : padTo4(bytes);
    this.device.queue.writeBuffer(buffer, offset, padded.buffer, padded.byteOffset, padded.byteLength);
  }

  /**
   * Wait until every queued write has reached the GPU. writeBuffer copies its data into driver
   * staging memory that is freed only once the queue has moved on, so a long run of writes (a
   * model load) waits here now and then to keep that memory bounded.
   */
  async flushWrites(): Promise<void> {
    this.device.queue.submit([]);
    await this.device.queue.onSubmittedWorkDone();
  }

  /** Copy `bytes` from a buffer to the host through a staging buffer. */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.acquire(`${buffer.label}:readback`, size, Usage.MAP_READ | Usage.COPY_DST);
    const encoder = this.device.createCommandEncoder({ label: `${buffer.label}:readback` });
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ_MODE, 0, size);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.release(staging);
    return out;
  }

  /** Give a buffer back: recycled when it came from `acquire` and reuse is on, else destroyed. */
  release(buffer: GPUBuffer): void {
    const entry = this.live.get(buffer);
    if (!entry) throw new InternalError(`release of a buffer this owner does not hold: ${buffer.label}`);
    this.live.delete(buffer);
    this.liveBytes -= entry.bytes;
    if (entry.pooled && this.reuse) {
      const key = `${buffer.usage}:${entry.bytes}`;
      const list = this.pool.get(key) ?? [];
      list.push(buffer);
      this.pool.set(key, list);
      this.pooledBytes += entry.bytes;
      buffer.label = `${buffer.label}:pooled`;
    } else {
      this.categoryBytes[entry.category] -= entry.bytes;
      buffer.destroy();
    }
  }

  /** Drop recycled buffers (memory pressure). */
  trim(): void {
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.categoryBytes.activations -= this.pooledBytes;
    this.pool.clear();
    this.pooledBytes = 0;
  }

  destroyAll(): void {
    this.trim();
    for (const b of this.live.keys()) b.destroy();
    this.live.clear();
    this.categoryBytes.weights = 0;
    this.categoryBytes.kv_pool = 0;
    this.categoryBytes.activations = 0;
    this.liveBytes = 0;
  }

  stats(): GpuBufferStats {
    let pooledBuffers = 0;
    for (const list of this.pool.values()) pooledBuffers += list.length;
    return { byCategory: { ...this.categoryBytes }, liveBuffers: this.live.size, liveBytes: this.liveBytes, pooledBuffers, pooledBytes: this.pooledBytes, peakBytes: this.peakBytes };
  }

  private track(buffer: GPUBuffer, bytes: number, pooled: boolean, category: GpuBufferCategory): void {
    // Exact buffers count when created; pooled ones when first created (recycling moves none).
    if (!pooled) this.categoryBytes[category] += bytes;
    this.live.set(buffer, { bytes, pooled, category });
    this.liveBytes += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes + this.pooledBytes);
  }
}

function padTo4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(bytes);
  return out;
}
