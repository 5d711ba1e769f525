import { InvalidRequestError } from '../../domain/errors.ts';
import type { ByteRangeSource } from '../../ports/outbound.ts';

/** A ByteRangeSource over bytes already in memory (a dropped file, a test fixture). */
export class MemoryRangeSource implements ByteRangeSource {
  readonly size: number;

  constructor(
    private readonly bytes: Uint8Array,
    readonly id = 'memory',
  ) {
    this.size = bytes.length;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      return Promise.reject(new InvalidRequestError(`read of ${length} bytes at ${offset} is outside ${this.id} (${this.size} bytes)`, { offset, length }));
    }
    return Promise.resolve(this.bytes.subarray(offset, offset + length));
  }
}
