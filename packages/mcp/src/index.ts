export { readMcpConfig, parseRpc, McpConfigError, DEFAULT_TOOL_TIMEOUT_MS, TOOL_TIMEOUT_ENV, type McpConfig } from './config.ts';
export { createRedactor, type Redactor } from './redact.ts';
export { createToolContext, type ToolContext } from './context.ts';
export { createAirlockMcpServer, AIRLOCK_TOOLS, SERVER_INFO } from './server.ts';
export { serveStdio } from './stdio.ts';
export { serveHttp, MCP_PATH, DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_SECONDS, MAX_SESSIONS_ENV, SESSION_IDLE_ENV, type RunningMcpHttp, type ServeHttpOptions } from './http.ts';
export { createOutboundFetch, checkTarget, classifyAddress, parsePrivateUrlAllowance, ALLOW_PRIVATE_URLS_ENV, type OutboundOptions, type PrivateUrlAllowance } from './outbound.ts';
