// One deadline for a whole tool call that pays or sends (McpConfig.toolTimeoutMs): its answer, and with it
// `paid: true` and the do-not-retry hint, has to reach the model before the MCP client gives up on the request
// (found by review: the limits of each step added up past the client's 60 s, the model saw only "Request timed
// out", retried, and paid again).
import { DEFAULT_TOOL_TIMEOUT_MS, TOOL_TIMEOUT_ENV, type McpConfig } from '../config.ts';
import { ToolError } from '../results.ts';

export interface CallDeadline {
  /** When the call must have answered (epoch milliseconds). */
  at: number;
  /** Aborted at `at` with a `resource_timeout` ToolError as its reason: the paying tools' fetches stop there. */
  signal: AbortSignal;
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
