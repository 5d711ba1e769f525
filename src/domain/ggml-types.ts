/**
 * ggml's tensor types as GGUF files name them (the numeric ids of ggml.h's `enum ggml_type`),
 * with each type's block shape: `blockElements` consecutive elements of a row are stored in
 * `blockBytes` bytes. A row's length (ne[0]) must be a whole number of blocks.
 *
 * The table lists every type whose block size we know, so a reader can bound-check any tensor of
 * a file; `dequantizable` says which ones the runtime can compute with (see gguf-blocks.ts).
 */
import { InternalError } from './errors.ts';

export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: string;
  readonly blockElements: number;
  readonly blockBytes: number;
}

const TYPES: readonly GgmlTypeInfo[] = [
  { id: 0, name: 'F32', blockElements: 1, blockBytes: 4 },
  { id: 1, name: 'F16', blockElements: 1, blockBytes: 2 },
  { id: 2, name: 'Q4_0', blockElements: 32, blockBytes: 18 },
  { id: 3, name: 'Q4_1', blockElements: 32, blockBytes: 20 },
  { id: 6, name: 'Q5_0', blockElements: 32, blockBytes: 22 },
  { id: 7, name: 'Q5_1', blockElements: 32, blockBytes: 24 },
  { id: 8, name: 'Q8_0', blockElements: 32, blockBytes: 34 },
  { id: 9, name: 'Q8_1', blockElements: 32, blockBytes: 36 },
  { id: 10, name: 'Q2_K', blockElements: 256, blockBytes: 84 },
  { id: 11, name: 'Q3_K', blockElements: 256, blockBytes: 110 },
  { id: 12, name: 'Q4_K', blockElements: 256, blockBytes: 144 },
  { id: 13, name: 'Q5_K', blockElements: 256, blockBytes: 176 },
  { id: 14, name: 'Q6_K', blockElements: 256, blockBytes: 210 },
  { id: 15, name: 'Q8_K', blockElements: 256, blockBytes: 292 },
  { id: 24, name: 'I8', blockElements: 1, blockBytes: 1 },
  { id: 25, name: 'I16', blockElements: 1, blockBytes: 2 },
  { id: 26, name: 'I32', blockElements: 1, blockBytes: 4 },
  { id: 27, name: 'I64', blockElements: 1, blockBytes: 8 },
  { id: 28, name: 'F64', blockElements: 1, blockBytes: 8 },
  { id: 30, name: 'BF16', blockElements: 1, blockBytes: 2 },
];

export type GgmlTypeName =
  | 'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q8_1'
  | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K' | 'I8' | 'I16' | 'I32' | 'I64' | 'F64';

const BY_ID: ReadonlyMap<number, GgmlTypeInfo> = new Map(TYPES.map((t) => [t.id, t]));
const BY_NAME: ReadonlyMap<string, GgmlTypeInfo> = new Map(TYPES.map((t) => [t.name, t]));

/** The type with ggml id `id`, or undefined when we do not know its block shape. */
export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

export function ggmlType(name: GgmlTypeName): GgmlTypeInfo {
  const t = BY_NAME.get(name);
  // The union above and the table are the same list; a miss is a typo in this file.
  if (t === undefined) throw new InternalError(`ggml type ${name} missing from the table`, { name });
  return t;
}

/** Types the runtime dequantizes (CPU reference) and reads in its kernels. */
export const DEQUANTIZABLE: ReadonlySet<GgmlTypeName> = new Set<GgmlTypeName>([
  'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K',
]);

export function isDequantizable(name: string): name is GgmlTypeName {
  return DEQUANTIZABLE.has(name as GgmlTypeName);
}
