/**
 * MLX quantized checkpoints on their way to the GPU: a CheckpointConsumer in front of the
 * WeightLoader that turns each quantized linear's three tensors (X.weight packed u32, X.scales,
 * X.biases) into one matrix in the MLX block format (domain/mlx-quant.ts), streamed row chunk by
 * row chunk; every other tensor (norms, biases, unquantized matrices) passes through untouched.
 *
 * The file's tensor order is the writer's (MLX writes them in any order). Scales and biases are
 * small (1/8 of a 4-bit matrix at group 32) and are held until their weight has gone by; a
 * weight that comes before its scales is held whole until they arrive. Either way the host holds
 * at most one matrix besides the pending scales, never the checkpoint.
 */
import { InternalError } from '../../domain/errors.ts';
import { mlxGpuBlocks, mlxRowBytes, planMlxLinears, type MlxLinear, type MlxQuantization } from '../../domain/mlx-quant.ts';
import type { CheckpointConsumer, StreamedTensor, TensorHeader } from '../safetensors/index.ts';
import { mlxDtype } from './weight-formats.ts';
import type { LoadedTensor } from './weights.ts';

interface Pending {
  scales?: Uint8Array;
  biases?: Uint8Array;
  weight?: Uint8Array;
}

export class MlxWeightAssembler implements CheckpointConsumer {
  private linears = new Map<string, MlxLinear>();
  /** scales/biases name -> its linear's weight name. */
  private readonly sideOf = new Map<string, string>();
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly inner: { begin(t: ReadonlyMap<string, TensorHeader>): void; tensor(t: LoadedTensor): Promise<void> },
    private readonly quantization: MlxQuantization,
  ) {}

  /** Validate the quantized tensors, then show the loader each linear as one [out, in] matrix. */
  begin(headers: ReadonlyMap<string, TensorHeader>): void {
    this.linears = planMlxLinears(this.quantization, headers);
    const shown = new Map(headers);
    for (const l of this.linears.values()) {
      shown.delete(l.scales);
      shown.delete(l.biases);
      this.sideOf.set(l.scales, l.name);
      this.sideOf.set(l.biases, l.name);
      shown.set(l.name, { dtype: 'U8', shape: [l.rows, l.cols], byteLength: l.rows * mlxRowBytes(l) });
    }
    this.inner.begin(shown);
  }

  async tensor(t: StreamedTensor): Promise<void> {
    const owner = this.sideOf.get(t.name);
    if (owner !== undefined) {
      const p = this.entry(owner);
      const bytes = (await t.read(t.byteLength)).slice();
      if (t.name.endsWith('.scales')) p.scales = bytes;
      else p.biases = bytes;
      if (p.weight !== undefined) await this.emitHeld(owner, p);
      return;
    }
    const linear = this.linears.get(t.name);
    if (linear === undefined) return this.inner.tensor(t);
    const p = this.entry(t.name);
    if (p.scales === undefined || p.biases === undefined) {
      p.weight = (await t.read(t.byteLength)).slice();
      return;
    }
    await this.emit(linear, p.scales, p.biases, (n) => t.read(n));
    this.pending.delete(t.name);
  }

  private entry(name: string): Pending {
    let p = this.pending.get(name);
    if (p === undefined) this.pending.set(name, (p = {}));
    return p;
  }

  private async emitHeld(name: string, p: Pending): Promise<void> {
    const { weight, scales, biases } = p;
    if (weight === undefined || scales === undefined || biases === undefined) return;
    let at = 0;
    await this.emit(this.linears.get(name) as MlxLinear, scales, biases, async (n) => weight.subarray(at, (at += n)));
    this.pending.delete(name);
  }

  /** Hand the loader the linear in GPU blocks; it reads whole rows, converted as they pass. */
  private async emit(l: MlxLinear, scales: Uint8Array, biases: Uint8Array, readPacked: (n: number) => Promise<Uint8Array>): Promise<void> {
    const rowOut = mlxRowBytes(l);
    const rowPacked = (l.cols * l.bits) / 8;
    const rowSide = (l.cols / l.groupSize) * 2;
    let row = 0;
    const read = async (n: number): Promise<Uint8Array> => {
      if (n % rowOut !== 0) throw new InternalError(`MLX matrix ${l.name} read in ${n} bytes, not whole rows of ${rowOut}`, { tensor: l.name });
      const m = n / rowOut;
      const packed = await readPacked(m * rowPacked);
      const side = (b: Uint8Array): Uint8Array => b.subarray(row * rowSide, (row + m) * rowSide);
      const out = mlxGpuBlocks(l, m, packed, side(scales), side(biases));
      row += m;
      return out;
    };
    const blockDtype = mlxDtype(l.bits, l.groupSize, l.scaleDtype);
    await this.inner.tensor({ name: l.name, dtype: 'U8', shape: [l.rows, l.cols], byteLength: l.rows * rowOut, read, blockDtype });
  }
}
