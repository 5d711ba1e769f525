import type { KvBlobCodecPort } from '../../ports/outbound.ts';
import { decodeAgentBlob, encodeAgentBlob } from './agent-blob.ts';

/** The agent blob format as the cache store sees it: one safetensors file per agent. */
export const safetensorsBlobCodec: KvBlobCodecPort = {
  encode: (input) => encodeAgentBlob(input),
  decode: (bytes, expected) => decodeAgentBlob(bytes, expected),
};
