export { readMcpConfig, parseRpc, McpConfigError, type McpConfig } from './config.ts';
export { createRedactor, type Redactor } from './redact.ts';
export { createToolContext, type ToolContext } from './context.ts';
export { createAirlockMcpServer, AIRLOCK_TOOLS, SERVER_INFO } from './server.ts';
export { serveStdio } from './stdio.ts';
export { serveHttp, MCP_PATH, type RunningMcpHttp } from './http.ts';
