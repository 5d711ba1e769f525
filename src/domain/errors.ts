/**
 * Typed errors of the runtime. Every error has a stable `name` and `code`, and a plain-object
 * form (`toPlain` / `errorFromPlain`) so it survives `postMessage` and Comlink between the
 * worker and the page: structured clone drops the prototype, so we send data and rebuild.
 */

export type ErrorDetails = Readonly<Record<string, unknown>>;

export interface PlainError {
  readonly __semanticError: true;
  readonly name: string;
  readonly code: string;
  readonly message: string;
  readonly details?: ErrorDetails;
  readonly stack?: string;
}

export abstract class SemanticError extends Error {
  abstract readonly code: string;
  readonly details: ErrorDetails | undefined;

  constructor(message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.details = details;
  }

  toPlain(): PlainError {
    return {
      __semanticError: true,
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.details ? { details: this.details } : {}),
      ...(this.stack ? { stack: this.stack } : {}),
    };
  }
}

/** The pool cannot hold a request even after eviction and preemption. */
export class PoolExhaustedError extends SemanticError {
  override readonly name = 'PoolExhaustedError';
  readonly code = 'POOL_EXHAUSTED';
}
/** Arguments or shapes are invalid; raised before any GPU work. */
export class InvalidRequestError extends SemanticError {
  override readonly name = 'InvalidRequestError';
  readonly code = 'INVALID_REQUEST';
}
export class AgentNotFoundError extends SemanticError {
  override readonly name = 'AgentNotFoundError';
  readonly code = 'AGENT_NOT_FOUND';
}
export class ModelNotFoundError extends SemanticError {
  override readonly name = 'ModelNotFoundError';
  readonly code = 'MODEL_NOT_FOUND';
}
/** A cache or blob was produced for a different model, format version or shape. */
export class ModelMismatchError extends SemanticError {
  override readonly name = 'ModelMismatchError';
  readonly code = 'MODEL_MISMATCH';
}
/** Bytes that should be a cache blob (or a safetensors file) are malformed. */
export class CacheCorruptError extends SemanticError {
  override readonly name = 'CacheCorruptError';
  readonly code = 'CACHE_CORRUPT';
}
/** Persistent storage refused a write for lack of space, after eviction was tried. */
export class QuotaExceededError extends SemanticError {
  override readonly name = 'QuotaExceededError';
  readonly code = 'QUOTA_EXCEEDED';
}
/** Another tab (or worker) of this origin is the agent's writer right now (Web Locks). */
export class AgentBusyError extends SemanticError {
  override readonly name = 'AgentBusyError';
  readonly code = 'AGENT_BUSY';
}
/** The GPU device was lost; the engine must be rebuilt on a new device. */
export class DeviceLostError extends SemanticError {
  override readonly name = 'DeviceLostError';
  readonly code = 'DEVICE_LOST';
}
/** The model config names an architecture or feature we do not implement. */
export class UnsupportedModelError extends SemanticError {
  override readonly name = 'UnsupportedModelError';
  readonly code = 'UNSUPPORTED_MODEL';
}
/**
 * A model file (GGUF, MLX safetensors) is malformed: `details.reason` names what was wrong, so
 * untrusted bytes only ever produce this error with a stated reason.
 */
export class ModelFormatError extends SemanticError {
  override readonly name = 'ModelFormatError';
  readonly code = 'MODEL_FORMAT';
}
/** A weight tensor is stored in a type we cannot compute with; details name the tensor and type. */
export class UnsupportedTensorTypeError extends SemanticError {
  override readonly name = 'UnsupportedTensorTypeError';
  readonly code = 'UNSUPPORTED_TENSOR_TYPE';
}
/** Tokenizer files are missing or cannot be loaded. */
export class TokenizerError extends SemanticError {
  override readonly name = 'TokenizerError';
  readonly code = 'TOKENIZER_ERROR';
}
/** A request was cancelled by its caller. */
export class CancelledError extends SemanticError {
  override readonly name = 'CancelledError';
  readonly code = 'CANCELLED';
}
/** A broken invariant inside the runtime, or a foreign error carried across the boundary. */
export class InternalError extends SemanticError {
  override readonly name = 'InternalError';
  readonly code = 'INTERNAL';
}

type ErrorCtor = new (message: string, details?: ErrorDetails) => SemanticError;

const REGISTRY: ReadonlyMap<string, ErrorCtor> = new Map<string, ErrorCtor>([
  ['PoolExhaustedError', PoolExhaustedError],
  ['InvalidRequestError', InvalidRequestError],
  ['AgentNotFoundError', AgentNotFoundError],
  ['ModelNotFoundError', ModelNotFoundError],
  ['ModelMismatchError', ModelMismatchError],
  ['CacheCorruptError', CacheCorruptError],
  ['QuotaExceededError', QuotaExceededError],
  ['DeviceLostError', DeviceLostError],
  ['AgentBusyError', AgentBusyError],
  ['UnsupportedModelError', UnsupportedModelError],
  ['ModelFormatError', ModelFormatError],
  ['UnsupportedTensorTypeError', UnsupportedTensorTypeError],
  ['TokenizerError', TokenizerError],
  ['CancelledError', CancelledError],
  ['InternalError', InternalError],
]);

export function isPlainError(value: unknown): value is PlainError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<PlainError>;
  return v.__semanticError === true && typeof v.name === 'string' && typeof v.code === 'string';
}

/** Any thrown value to its plain form; foreign errors become InternalError with their name kept. */
export function errorToPlain(error: unknown): PlainError {
  if (error instanceof SemanticError) return error.toPlain();
  if (error instanceof Error) {
    return new InternalError(error.message, { originalName: error.name }).toPlain();
  }
  return new InternalError(String(error)).toPlain();
}

/** Rebuild the typed class from its plain form; unknown names become InternalError. */
export function errorFromPlain(plain: PlainError): SemanticError {
  const Ctor = REGISTRY.get(plain.name);
  const error = Ctor
    ? new Ctor(plain.message, plain.details)
    : new InternalError(plain.message, { ...plain.details, originalName: plain.name, originalCode: plain.code });
  if (plain.stack) error.stack = plain.stack;
  return error;
}

let byCode: ReadonlyMap<string, ErrorCtor> | null = null;

/** The typed class for an error code (as `code` carries it, any case); unknown codes become InternalError. */
export function errorFromCode(code: string, message: string, details?: ErrorDetails): SemanticError {
  byCode ??= new Map([...REGISTRY.values()].map((Ctor) => [new Ctor('').code, Ctor]));
  const Ctor = byCode.get(code.toUpperCase());
  return Ctor ? new Ctor(message, details) : new InternalError(message, { ...details, originalCode: code });
}
