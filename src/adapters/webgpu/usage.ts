/**
 * GPUBufferUsage / GPUMapMode values from the WebGPU spec. The globals only exist once a GPU is
 * installed (Dawn in Node installs them late), so modules use these constants at import time.
 */
export const Usage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  INDEX: 0x0010,
  VERTEX: 0x0020,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  INDIRECT: 0x0100,
  QUERY_RESOLVE: 0x0200,
} as const;

export const MAP_READ_MODE = 0x0001;

/** Storage that can be read back and written from the host. */
export const STORAGE_RW = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
