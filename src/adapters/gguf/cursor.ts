/**
 * A little-endian reader over the first bytes of a GGUF file. It knows the file's real size,
 * so a read past the end of the file is a ModelFormatError ('truncated'), while a read past
 * the bytes fetched so far is a `NeedMoreBytes` signal: the reader then fetches a longer prefix
 * and parses again. Every read checks its bound before touching a byte.
 */
import { ModelFormatError } from '../../domain/errors.ts';

/** Why a GGUF file was refused: the `details.reason` of its ModelFormatError. */
export type GgufFormatReason =
  | 'truncated'
  | 'bad-magic'
  | 'unsupported-version'
  | 'count-too-large'
  | 'value-out-of-range'
  | 'invalid-utf8'
  | 'invalid-value-type'
  | 'invalid-bool'
  | 'array-too-deep'
  | 'duplicate-key'
  | 'invalid-alignment'
  | 'invalid-dims'
  | 'unknown-tensor-type'
  | 'duplicate-tensor'
  | 'misaligned-offset'
  | 'partial-block'
  | 'tensor-out-of-bounds'
  | 'overlapping-tensors'
  | 'header-too-large'
  | 'unexpected';

export function formatError(reason: GgufFormatReason, message: string, extra?: Record<string, unknown>): ModelFormatError {
  return new ModelFormatError(`gguf: ${message}`, { reason, ...extra });
}

/** Thrown inside the parser when the prefix is too short; never escapes readGguf. */
export class NeedMoreBytes {
  constructor(readonly needed: number) {}
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class GgufCursor {
  private readonly view: DataView;
  pos = 0;

  constructor(
    private readonly bytes: Uint8Array,
    /** Size of the whole file; bytes.length may be shorter (a prefix). */
    readonly fileSize: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes left in the file after the cursor. */
  get remaining(): number {
    return this.fileSize - this.pos;
  }

  private take(n: number, what: string): number {
    const at = this.pos;
    if (n > this.fileSize - at) {
      throw formatError('truncated', `file ends inside ${what} (needs ${n} bytes at offset ${at}, file has ${this.fileSize})`, { offset: at });
    }
    if (at + n > this.bytes.length) throw new NeedMoreBytes(at + n);
    this.pos = at + n;
    return at;
  }

  u8(what: string): number {
    return this.view.getUint8(this.take(1, what));
  }
  i8(what: string): number {
    return this.view.getInt8(this.take(1, what));
  }
  u16(what: string): number {
    return this.view.getUint16(this.take(2, what), true);
  }
  i16(what: string): number {
    return this.view.getInt16(this.take(2, what), true);
  }
  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }
  i32(what: string): number {
    return this.view.getInt32(this.take(4, what), true);
  }
  f32(what: string): number {
    return this.view.getFloat32(this.take(4, what), true);
  }
  f64(what: string): number {
    return this.view.getFloat64(this.take(8, what), true);
  }
  u64Big(what: string): bigint {
    return this.view.getBigUint64(this.take(8, what), true);
  }
  i64Big(what: string): bigint {
    return this.view.getBigInt64(this.take(8, what), true);
  }

  /** A u64 that must be a safe integer (counts, lengths, offsets, dims). */
  u64(what: string): number {
    const v = this.u64Big(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw formatError('value-out-of-range', `${what} ${v} is too large`, { value: String(v) });
    }
    return Number(v);
  }

  /** A GGUF string: u64 byte length, then UTF-8 bytes (no terminator). */
  string(what: string): string {
    const length = this.u64(`${what} length`);
    const at = this.take(length, what);
    try {
      return utf8.decode(this.bytes.subarray(at, at + length));
    } catch {
      throw formatError('invalid-utf8', `${what} at offset ${at} is not UTF-8`, { offset: at });
    }
  }
}
