/** A ByteRangeSource over a file on disk: positioned reads through one file handle. */
import { open, type FileHandle } from 'node:fs/promises';
import { InvalidRequestError, ModelNotFoundError } from '../../domain/errors.ts';
import type { ByteRangeSource } from '../../ports/outbound.ts';

export class FileRangeSource implements ByteRangeSource {
  private constructor(
    private readonly handle: FileHandle,
    readonly id: string,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<FileRangeSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (cause) {
      throw new ModelNotFoundError(`cannot open model file ${path}`, { path, reason: String(cause) });
    }
    const { size } = await handle.stat();
    return new FileRangeSource(handle, path, size);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new InvalidRequestError(`read of ${length} bytes at ${offset} is outside ${this.id} (${this.size} bytes)`, { offset, length });
    }
    const out = new Uint8Array(length);
    let done = 0;
    // A positioned read may return fewer bytes than asked; loop until the range is filled.
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) throw new InvalidRequestError(`${this.id} ended early at ${offset + done}`, { offset: offset + done });
      done += bytesRead;
    }
    return out;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
