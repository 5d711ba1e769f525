/**
 * Counts and times what a step asks of WebGPU, without touching the runtime: the device's own
 * methods are wrapped on the instance (createCommandEncoder, createBindGroup, queue.writeBuffer,
 * queue.submit) so the numbers are what the runtime really does. With the timestamp-query
 * feature every compute pass also gets begin/end timestamps, resolved after the step and summed
 * per kernel (the pass label up to its first ':'), which shows where a step's GPU time goes.
 * Where timestamps read as zero (SwiftShader's), `splitPasses` instead submits every compute pass
 * on its own as soon as it is recorded and times it from the queue's completion callbacks: pass
 * i's time is its completion minus the later of its submit and pass i-1's completion. The work
 * and its order are unchanged; only the submission is finer.
 */
export interface StepCounts {
  passes: number;
  dispatches: number;
  bindGroups: number;
  writeBuffers: number;
  writeBufferBytes: number;
  submits: number;
  /** Host time from the first command of the step to its last submit. */
  hostMs: number;
}

export interface KernelTime {
  readonly kernel: string;
  readonly passes: number;
  readonly ms: number;
}

// Two timestamps per pass; WebGPU caps a query set at 4096 queries.
const MAX_PASSES = 2048;

/** The kernel a pass label names: its first part, layer numbers dropped ('layer3.q_proj:vec:f16' -> 'q_proj'). */
function kernelOf(label: string): string {
  return label.split(':')[0].replace(/^layer\d+\./, '');
}

export class GpuCounters {
  private counts: StepCounts = GpuCounters.zero();
  private firstAt = 0;
  private labels: string[] = [];
  private splits: Array<Promise<{ label: string; submitted: number; done: number }>> = [];
  /** Submit each compute pass alone and time it by completion (for adapters without timestamps). */
  splitPasses = false;
  private readonly querySet: GPUQuerySet | null;
  private readonly resolve: GPUBuffer | null;
  private readonly readback: GPUBuffer | null;

  constructor(private readonly device: GPUDevice, timestamps: boolean) {
    const on = timestamps && device.features.has('timestamp-query');
    this.querySet = on ? device.createQuerySet({ label: 'bench:timestamps', type: 'timestamp', count: MAX_PASSES * 2 }) : null;
    this.resolve = on ? device.createBuffer({ label: 'bench:timestamps-resolve', size: MAX_PASSES * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
    this.readback = on ? device.createBuffer({ label: 'bench:timestamps-read', size: MAX_PASSES * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : null;
    this.wrap();
  }

  static zero(): StepCounts {
    return { passes: 0, dispatches: 0, bindGroups: 0, writeBuffers: 0, writeBufferBytes: 0, submits: 0, hostMs: 0 };
  }

  get timing(): boolean {
    return this.querySet !== null;
  }

  /** Start counting a new step. */
  reset(): void {
    this.counts = GpuCounters.zero();
    this.firstAt = 0;
    this.labels = [];
    this.splits = [];
  }

  /** Per-kernel times of the passes submitted alone (splitPasses) since reset. */
  async splitTimes(): Promise<KernelTime[]> {
    const done = await Promise.all(this.splits);
    const byKernel = new Map<string, { passes: number; ms: number }>();
    let previous = 0;
    for (const d of done) {
      const kernel = kernelOf(d.label);
      const e = byKernel.get(kernel) ?? { passes: 0, ms: 0 };
      e.passes++;
      e.ms += d.done - Math.max(previous, d.submitted);
      previous = d.done;
      byKernel.set(kernel, e);
    }
    return [...byKernel].map(([kernel, e]) => ({ kernel, ...e })).sort((a, b) => b.ms - a.ms);
  }

  snapshot(): StepCounts {
    return { ...this.counts };
  }

  /** GPU time per kernel of the passes recorded since reset (empty without timestamp-query). */
  async kernelTimes(): Promise<KernelTime[]> {
    if (!this.querySet || !this.resolve || !this.readback || this.labels.length === 0) return [];
    const n = Math.min(this.labels.length, MAX_PASSES);
    const enc = this.device.createCommandEncoder({ label: 'bench:timestamps' });
    enc.resolveQuerySet(this.querySet, 0, n * 2, this.resolve, 0);
    enc.copyBufferToBuffer(this.resolve, 0, this.readback, 0, n * 16);
    this.device.queue.submit([enc.finish()]);
    await this.readback.mapAsync(GPUMapMode.READ, 0, n * 16);
    const stamps = new BigUint64Array(this.readback.getMappedRange(0, n * 16).slice(0));
    this.readback.unmap();
    const byKernel = new Map<string, { passes: number; ns: number }>();
    for (let i = 0; i < n; i++) {
      const kernel = kernelOf(this.labels[i]);
      const e = byKernel.get(kernel) ?? { passes: 0, ns: 0 };
      e.passes++;
      e.ns += Number(stamps[i * 2 + 1] - stamps[i * 2]);
      byKernel.set(kernel, e);
    }
    return [...byKernel].map(([kernel, e]) => ({ kernel, passes: e.passes, ms: e.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
  }

  private touch(): void {
    if (this.firstAt === 0) this.firstAt = performance.now();
  }

  private wrap(): void {
    const device = this.device as GPUDevice & Record<string, unknown>;
    const queue = device.queue as GPUQueue & Record<string, unknown>;
    const createEncoder = device.createCommandEncoder.bind(device);
    const createBindGroup = device.createBindGroup.bind(device);
    const writeBuffer = queue.writeBuffer.bind(queue) as (...a: unknown[]) => void;
    const submit = queue.submit.bind(queue);
    device.createBindGroup = (d: GPUBindGroupDescriptor) => {
      this.counts.bindGroups++;
      return createBindGroup(d);
    };
    queue.writeBuffer = ((buffer: GPUBuffer, offset: number, data: BufferSource, ...rest: unknown[]) => {
      this.touch();
      this.counts.writeBuffers++;
      this.counts.writeBufferBytes += data.byteLength;
      writeBuffer(buffer, offset, data, ...rest);
    }) as GPUQueue['writeBuffer'];
    queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
      this.counts.submits++;
      submit(buffers);
      if (this.firstAt) this.counts.hostMs = performance.now() - this.firstAt;
    };
    device.createCommandEncoder = (d?: GPUCommandEncoderDescriptor) => {
      this.touch();
      const enc = createEncoder(d);
      const begin = enc.beginComputePass.bind(enc);
      const split = (pd?: GPUComputePassDescriptor): GPUComputePassEncoder => {
        const own = createEncoder({ label: 'bench:split' });
        const pass = this.beginPass(own.beginComputePass.bind(own), pd);
        const end = pass.end.bind(pass);
        (pass as GPUComputePassEncoder & Record<string, unknown>).end = () => {
          end();
          const submitted = performance.now();
          submit([own.finish()]);
          const label = pd?.label ?? 'unlabeled';
          this.splits.push(device.queue.onSubmittedWorkDone().then(() => ({ label, submitted, done: performance.now() })));
        };
        return pass;
      };
      (enc as GPUCommandEncoder & Record<string, unknown>).beginComputePass = (pd?: GPUComputePassDescriptor) => (this.splitPasses ? split(pd) : this.beginPass(begin, pd));
      return enc;
    };
  }

  private beginPass(begin: (pd?: GPUComputePassDescriptor) => GPUComputePassEncoder, pd?: GPUComputePassDescriptor): GPUComputePassEncoder {
    this.counts.passes++;
    const i = this.labels.length;
    let desc = pd;
    if (this.querySet && !this.splitPasses && i < MAX_PASSES && !pd?.timestampWrites) {
      this.labels.push(pd?.label ?? 'unlabeled');
      desc = { ...pd, timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: i * 2, endOfPassWriteIndex: i * 2 + 1 } };
    }
    const pass = begin(desc);
    const dispatchWorkgroups = pass.dispatchWorkgroups.bind(pass);
    (pass as GPUComputePassEncoder & Record<string, unknown>).dispatchWorkgroups = (x: number, y?: number, z?: number) => {
      this.counts.dispatches++;
      dispatchWorkgroups(x, y, z);
    };
    return pass;
  }
}
