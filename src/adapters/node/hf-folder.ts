import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { InternalError, InvalidRequestError, ModelNotFoundError } from '../../domain/errors.ts';
import type { ModelFileSource } from '../../ports/outbound.ts';


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
      const code = errorCode(error);
      if (code && MISSING_CODES.has(code)) {
        throw new ModelNotFoundError(`${name} not found in ${this.id}`, { source: this.id, file: name }, { cause: error });
      }
      throw new InternalError(`cannot read ${name} in ${this.id}`, { source: this.id, file: name, code }, { cause: error });
    }
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
