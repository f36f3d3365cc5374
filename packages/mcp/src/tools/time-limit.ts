// One deadline for a whole tool call that pays or sends (McpConfig.toolTimeoutMs): its answer, and with it
// `paid: true` and the do-not-retry hint, has to reach the model before the MCP client gives up on the request
// (found by review: the limits of each step added up past the client's 60 s, the model saw only "Request timed
// out", retried, and paid again).
import { DEFAULT_TOOL_TIMEOUT_MS, TOOL_TIMEOUT_ENV, type McpConfig } from '../config.ts';
import { ToolError } from '../results.ts';

/** A request that signs or pays, sent to Airlock and not answered when the deadline passed: Airlock may still sign or pay it. */
export interface UndecidedRequest {
  /** Airlock's route, such as `/v1/sign/transaction`. */
  path: string;
  /** The Idempotency-Key it was sent with: Airlock's audit entry for the request carries it. */
  idempotencyKey: string;
}

export interface CallDeadline {
  /** When the call must have answered (epoch milliseconds). */
  at: number;
  /**
   * Aborted at `at` with a `resource_timeout` ToolError as its reason: the paying tools' fetches stop there, and so
   * do the call's requests to Airlock (ToolContext.withinDeadline).
   */
  signal: AbortSignal;
  /** Set when the deadline cut off a request that signs or pays (see ToolContext.withinDeadline). */
  undecided?: UndecidedRequest;
  /** The call is over: its timer is cleared. */
  end(): void;
}

export function startDeadline(config: McpConfig, tool: string): CallDeadline {
  const limitMs = config.toolTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new ToolError('resource_timeout', `${tool} did not finish within its time limit of ${limitMs / 1000} s (${TOOL_TIMEOUT_ENV}).`)),
    limitMs,
  );
  timer.unref();
  return { at: Date.now() + limitMs, signal: controller.signal, end: () => clearTimeout(timer) };
}
