import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

/**
 * Serves one MCP client over this process's stdin/stdout (stdout is the protocol: nothing else may print
 * there). Resolves when the client goes away: stdin ends (the client closed the pipe or exited).
 */
export async function serveStdio(server: McpServer): Promise<void> {
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    // The SDK's stdio transport does not watch for end of input; a client that exits would leave us running.
    process.stdin.once('end', () => void server.close().finally(resolve));
  });
  await server.connect(transport);
  await closed;
}
