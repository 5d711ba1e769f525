/**
 * Outbound (driven) ports: what the application needs from the outside world.
 * Adapters under src/adapters implement these; the worker wires them.
 */
import type { KvQuantization, ModelCacheSpec } from '../domain/model-cache-spec.ts';
import type { SamplingParams, TokenHistory } from '../domain/sampling.ts';
import type { AgentBlocks, CacheKey } from '../domain/values.ts';
import type { BlockCopy, BlockId, PoolStats } from '../domain/block-pool.ts';

/** One chat message, as chat templates expect it. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content: string;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers next. Default true. */
  readonly addGenerationPrompt?: boolean;
}

/**
 * Text <-> token ids, plus the model's chat template. Loading is async (files may come from the
 * network or the Cache API); once loaded, every method is synchronous and pure.
 */
export interface TokenizerPort {
  /** Encode raw text. `addSpecialTokens` (default false) adds BOS/EOS as the tokenizer's post-processor says. */
  encode(text: string, options?: { readonly addSpecialTokens?: boolean }): number[];
  /** Decode ids to text. `skipSpecialTokens` defaults to false. */
  decode(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string;
  /** Every id that ends generation (from generation_config.json and tokenizer_config.json). */
  eosTokenIds(): readonly number[];
  vocabSize(): number;
  /** Render the chat template to text. */
  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
  /** Render and encode the chat template; equals `encode(renderChat(...))` with no extra specials. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): number[];
  /**
   * Encode a raw-text prompt the way the model expects a sequence to start: with the specials
   * (BOS) of the tokenizer's post-processor unless tokenizer_config.json says add_bos_token false.
   * Absent: `encode(text)`.
   */
  encodePrompt?(text: string): number[];
  /** generation_config.json's sampling defaults (see domain generationDefaults); absent: none. */
  generationDefaults?(): Partial<SamplingParams>;
}

/**
 * Where a model's files come from: a folder on disk (Node), a URL prefix (browser, Hugging Face
 * hub or the app's own origin). Names are relative, e.g. `config.json`, `model.safetensors`.
 */
export interface ModelFileSource {
  /** A human-readable id: the folder path or the base URL. */
  readonly id: string;
  /** The whole file. Throws ModelNotFoundError when it is absent. */
  read(name: string): Promise<Uint8Array>;
  has(name: string): Promise<boolean>;
  /**
   * The file as a stream of chunks, for files too large to hold (checkpoints): the loader keeps
   * one tensor's worth of bytes at most. Optional: without it the loader falls back to `read`.
   * Throws ModelNotFoundError when the file is absent.
   */
  open?(name: string): Promise<ModelFileStream>;
}

/** A model file being read front to back. */
export interface ModelFileStream {
  /** Bytes in the file (known before the data arrive: file size or Content-Length). */
  readonly size: number;
  /** The bytes in order; stopping early (return / throw) closes the file or the download. */
  readonly chunks: AsyncIterable<Uint8Array>;
}

/**
 * Random access to one large file (a GGUF checkpoint): a file handle on disk, HTTP range requests
 * in the browser, or bytes already in memory. Readers take what they need, never the whole file.
 */
export interface ByteRangeSource {
  /** A human-readable id: the path or URL. */
  readonly id: string;
  /** Total size of the file in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`; callers keep offset + length <= size. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

// ---------------------------------------------------------------------------------------------
// Model backend


/** One sequence's slice of a batched forward step. */
export interface SequenceStep {
  /** New token ids: 1 for decode, a chunk for prefill. */
  readonly tokenIds: readonly number[];
  /** Position of tokenIds[0]; tokens before it are already in the KV blocks. */
  readonly startPosition: number;
  /** Block table covering positions [0, startPosition + tokenIds.length). */
  readonly blockTable: readonly BlockId[];
  /** Sample a next token after the last new token (false for a non-final prefill chunk). */
  readonly sample: boolean;
  readonly sampling: SamplingParams;
  /** Index of this token in the request's output, mixed into the seeded RNG. */
  readonly sampleStep: number;
  /** The sequence's prompt and output so far; read only when `sampling` has a penalty on. */
  readonly history?: TokenHistory;
  /**
   * With `sample`: score every new token, not just the last (teacher forcing). The step then
   * yields one logits row per new token; the token reported in `nextTokens` is the last one's.
   */
  readonly scoreAll?: boolean;
}

export interface ForwardResult {
  /** One entry per sequence: the sampled token id, or -1 where `sample` was false. */
  readonly nextTokens: Int32Array;
  /**
   * Logits [rows, vocab], only when asked for: one row per sampling sequence (its last new
   * token), or one per new token of a `scoreAll` sequence, in step order.
   */
  readonly logits?: Float32Array;
}

/**
 * A batched forward pass over paged KV. The engine owns block accounting (domain BlockPool);
 * the backend owns the memory behind the block ids and performs the copies it is told to.
 */
export interface ModelBackendPort {
  extractModelSpec(): ModelCacheSpec;
  readonly vocabSize: number;
  readonly maxContext: number;
  /** Blocks the backend's KV memory holds; the engine sizes its BlockPool from this. */
  readonly totalBlocks: number;
  forward(steps: readonly SequenceStep[], options?: { readonly returnLogits?: boolean }): Promise<ForwardResult>;
  /** Copy whole blocks (copy-on-write of shared prefixes). */
  copyBlocks(copies: readonly BlockCopy[]): Promise<void>;
  /** Read K/V of `tokens` tokens in these blocks to host memory, layout [layer][K|V][token, kvHead, headDim]. */
  readBlocks(blockTable: readonly BlockId[], tokens: number): Promise<KvSnapshot>;
  /** Upload a snapshot into these (fresh) blocks. */
  writeBlocks(blockTable: readonly BlockId[], snapshot: KvSnapshot): Promise<void>;
  dispose(): void;
}

/** K and V of one sequence in host memory, per layer, dense over tokens. */
export interface KvSnapshot {
  readonly tokens: number;
  readonly keys: readonly Float32Array[];
  readonly values: readonly Float32Array[];
}

// ---------------------------------------------------------------------------------------------
// Cache persistence and the tiered store

/** What is stored about a persisted agent cache besides the blob itself. */
export interface CachedAgentRecord {
  readonly agentId: string;
  readonly modelFingerprint: string;
  readonly tokenCount: number;
  readonly bytes: number;
  readonly lastUsed: number;
  readonly tier: CacheTier;
}

export type CacheTier = 'hot' | 'warm' | 'cold';

/**
 * Durable storage of one safetensors blob per agent (IndexedDB in the browser, a folder in Node).
 * `save` is atomic: readers see the old blob or the new one, never a torn one.
 */
export interface CachePersistencePort {
  save(agentId: string, blob: Uint8Array, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): Promise<void>;
  /** The blob, or null when absent. Parsing and validation are the caller's. */
  load(agentId: string): Promise<Uint8Array | null>;
  exists(agentId: string): Promise<boolean>;
  delete(agentId: string): Promise<boolean>;
  listCachedAgents(): Promise<CachedAgentRecord[]>;
  /**
   * Blobs are keyed by agent and model fingerprint: an instance is scoped to one model, and
   * these reach the others (list every model's agents; scope to another model to delete them).
   */
  listAllCachedAgents?(): Promise<CachedAgentRecord[]>;
  forModel?(modelFingerprint: string): Promise<CachePersistencePort>;
  /**
   * Incremental persistence (optional; without it every write is a whole `save`). An agent's
   * memory may be stored as segments, each a whole blob of the codec holding the KV of
   * positions [start, next segment's start); `save` writes one segment at 0. `appendSegment`
   * atomically keeps the stored segments with start < `segment.start`, drops the rest and adds
   * this one; it refuses (InvalidRequestError) when nothing stored covers [0, segment.start).
   * `load` of a segmented agent returns its first segment only (a valid, shorter cache); read
   * the whole with `loadSegments`, which returns the segments ordered by start, or null.
   */
  appendSegment?(agentId: string, segment: StoredSegment, record: Omit<CachedAgentRecord, 'tier' | 'bytes'>): Promise<void>;
  loadSegments?(agentId: string): Promise<StoredSegment[] | null>;
  /** Release what the instance holds open (a database connection). */
  close?(): void;
}

/** One stored piece of an agent's memory: a codec blob of positions from `start` on. */
export interface StoredSegment {
  /** First position the segment holds (0, or a multiple of the model's block tokens). */
  readonly start: number;
  readonly bytes: Uint8Array;
}

/** Where a cache was found, and how much of the request it covers. */
export interface CacheHit {
  readonly tier: CacheTier;
  readonly blocks: AgentBlocks;
  /** Tokens of the request that the cache already holds (longest common prefix). */
  readonly matchedTokens: number;
}

/** The tiered in-memory + persistent store of agent caches (hot GPU, warm host, cold storage). */
export interface CacheStorePort {
  /** Find the agent's cache in hot, then warm, then cold; bring it to hot; keep the common prefix. */
  get(key: CacheKey): Promise<CacheHit | null>;
  put(key: CacheKey, blocks: AgentBlocks): Promise<void>;
  /** Move one tier down: hot -> warm -> cold. */
  evict(agentId: string): Promise<CacheTier | null>;
  delete(agentId: string): Promise<boolean>;
  /** Persist everything pending (shutdown, pagehide). */
  flush(): Promise<void>;
  stats(): CacheStoreStats;
}

export interface CacheStoreStats {
  readonly hotBytes: number;
  readonly warmBytes: number;
  readonly coldAgents: number;
  readonly pool: PoolStats;
}

/** One agent's cache decoded from its blob. */
export interface DecodedAgentKv {
  readonly agentId: string;
  readonly tokenIds: number[];
  readonly snapshot: KvSnapshot;
  readonly quantization: KvQuantization;
}

/**
 * The agent cache blob format (safetensors in this runtime). `decode` parses untrusted bytes and
 * refuses another model (ModelMismatchError) or malformed data (CacheCorruptError).
 */
export interface KvBlobCodecPort {
  encode(input: {
    readonly agentId: string;
    readonly spec: ModelCacheSpec;
    readonly tokenIds: readonly number[];
    readonly snapshot: KvSnapshot;
    readonly quantization?: KvQuantization;
  }): Uint8Array;
  decode(bytes: Uint8Array, expected: ModelCacheSpec): DecodedAgentKv;
}
