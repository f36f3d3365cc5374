import { ERROR_CODES, type ErrorCode } from './codes.ts';
import type { Violation } from './policy/decision.ts';

export interface AirlockErrorOptions {
  hints?: string[];
  cause?: unknown;
  violations?: Violation[];
  /** Extra machine-readable details. Never put secrets here. */
  details?: Record<string, unknown>;
}

/**
 * The one error class. `code` is stable; `message` is short and never echoes
 * secret input (a custody service's input can be a key or a token).
 */
export class AirlockError extends Error {
  readonly code: ErrorCode;
  readonly hints: string[];
  readonly violations?: Violation[];
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message?: string, options: AirlockErrorOptions = {}) {
    super(message ?? ERROR_CODES[code].summary, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AirlockError';
    this.code = code;
    this.hints = options.hints ?? [];
    if (options.violations) this.violations = options.violations;
    if (options.details) this.details = options.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function isAirlockError(e: unknown): e is AirlockError {
  return e instanceof AirlockError;
}
