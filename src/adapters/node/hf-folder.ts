import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { InternalError, InvalidRequestError, ModelNotFoundError } from '../../domain/errors.ts';
import type { ModelFileSource, ModelFileStream } from '../../ports/outbound.ts';

/** Bytes per read of a streamed file: large enough for few syscalls, small beside any tensor. */
const STREAM_CHUNK = 1 << 20;

const MISSING_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

function errorCode(error: unknown): string | undefined {
  const code: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'code') : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** A Hugging Face model folder on local disk (Node only). */
export class FsModelSource implements ModelFileSource {
  readonly id: string;

  constructor(folder: string) {
    this.id = resolve(folder);
  }

  async read(name: string): Promise<Uint8Array> {
    const path = this.pathOf(name);
    try {
      const buffer = await readFile(path);
      // Node may hand back a slice of a shared pool; give callers a buffer of their own.
      return buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength
        ? new Uint8Array(buffer.buffer, 0, buffer.byteLength)
        : new Uint8Array(buffer);
    } catch (error) {
      throw this.failure(name, error);
    }
  }

  private failure(name: string, error: unknown): ModelNotFoundError | InternalError {
    const code = errorCode(error);
    if (code && MISSING_CODES.has(code)) {
      return new ModelNotFoundError(`${name} not found in ${this.id}`, { source: this.id, file: name }, { cause: error });
    }
    return new InternalError(`cannot read ${name} in ${this.id}`, { source: this.id, file: name, code }, { cause: error });
  }

  /** The file read front to back in 1 MiB chunks (checkpoints: never held whole). */
  async open(name: string): Promise<ModelFileStream> {
    const path = this.pathOf(name);
    const info = await stat(path).catch((error: unknown) => {
      throw this.failure(name, error);
    });
    if (!info.isFile()) throw new ModelNotFoundError(`${name} in ${this.id} is not a file`, { source: this.id, file: name });
    return { size: info.size, chunks: createReadStream(path, { highWaterMark: STREAM_CHUNK }) };
  }

  async has(name: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(name))).isFile();
    } catch {
      return false;
    }
  }

  /** File names are relative to the folder; refuse anything that would escape it. */
  private pathOf(name: string): string {
    const clean = normalize(name);
    if (!name || isAbsolute(name) || clean === '..' || clean.startsWith(`..${sep}`)) {
      throw new InvalidRequestError(`model file name ${name} must stay inside ${this.id}`, { file: name });
    }
    return join(this.id, clean);
  }
}
