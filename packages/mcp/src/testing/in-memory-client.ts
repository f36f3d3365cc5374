// The MCP server as a host meets it, in one process: the official SDK Client over a linked in-memory transport,
// calling tools by name. For tests that drive the tools as a model would.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createAirlockMcpServer, createRedactor, createToolContext, type McpConfig } from '../index.ts';

/** A tool call's answer, as the client gets it (`structuredContent` is the tool's result or `{error}`). */
export interface ToolAnswer {
  isError?: boolean;
  structuredContent?: any;
  content: { type: string; text?: string }[];
}

export type CallTool = (tool: string, args: Record<string, unknown>) => Promise<ToolAnswer>;

/** A connected client of a fresh server for `config`; `close` ends the session. */
export async function inMemoryClient(config: McpConfig): Promise<{ call: CallTool; close(): Promise<void> }> {
  const server = createAirlockMcpServer(createToolContext(config), createRedactor(config));
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name: 't', version: '1' });
  await client.connect(b);
  return {
    call: async (tool, args) => (await client.callTool({ name: tool, arguments: args })) as ToolAnswer,
    close: () => client.close(),
  };
}

/** Runs `fn` with a client of a fresh server for `config`, and closes it. */
export async function withInMemoryClient<T>(config: McpConfig, fn: (call: CallTool) => Promise<T>): Promise<T> {
  const { call, close } = await inMemoryClient(config);
  try {
    return await fn(call);
  } finally {
    await close();
  }
}
