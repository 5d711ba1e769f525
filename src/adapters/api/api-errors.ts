import { errorToPlain, type PlainError } from '../../domain/errors.ts';

/**
 * Typed runtime errors as each API reports them: an HTTP status plus OpenAI's
 * `{ error: { message, type, param, code } }` or Anthropic's `{ type: 'error', error: { type, message } }`.
 * Validation errors name the offending field in `details.param`. Both carry the runtime's error
 * code in `code` (lower case), from which a client rebuilds the typed class (errorFromCode).
 */
export type ApiFlavor = 'openai' | 'anthropic';

interface Mapping {
  readonly status: number;
  readonly openai: string;
  readonly anthropic: string;
}

const BY_CODE: Readonly<Record<string, Mapping>> = {
  INVALID_REQUEST: { status: 400, openai: 'invalid_request_error', anthropic: 'invalid_request_error' },
  AGENT_NOT_FOUND: { status: 404, openai: 'not_found_error', anthropic: 'not_found_error' },
  MODEL_NOT_FOUND: { status: 404, openai: 'not_found_error', anthropic: 'not_found_error' },
  MODEL_MISMATCH: { status: 409, openai: 'invalid_request_error', anthropic: 'invalid_request_error' },
  AGENT_BUSY: { status: 409, openai: 'conflict_error', anthropic: 'invalid_request_error' },
  POOL_EXHAUSTED: { status: 503, openai: 'server_overloaded', anthropic: 'overloaded_error' },
  DEVICE_LOST: { status: 503, openai: 'server_error', anthropic: 'overloaded_error' },
  CANCELLED: { status: 499, openai: 'cancelled', anthropic: 'api_error' },
};

const INTERNAL: Mapping = { status: 500, openai: 'server_error', anthropic: 'api_error' };

export interface ApiErrorBody {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

function paramOf(plain: PlainError): string | null {
  const p = plain.details?.['param'] ?? plain.details?.['field'];
  return typeof p === 'string' ? p : null;
}

/** The HTTP status and body for any thrown value. */
export function apiError(flavor: ApiFlavor, error: unknown): ApiErrorBody {
  const plain = errorToPlain(error);
  const m = BY_CODE[plain.code] ?? INTERNAL;
  if (flavor === 'anthropic') {
    // `code` is our extension: the runtime's typed error code, so clients can rebuild the class.
    return { status: m.status, body: { type: 'error', error: { type: m.anthropic, message: plain.message, code: plain.code.toLowerCase() } } };
  }
  return { status: m.status, body: { error: { message: plain.message, type: m.openai, param: paramOf(plain), code: plain.code.toLowerCase() } } };
}
