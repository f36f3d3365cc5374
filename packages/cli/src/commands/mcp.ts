import { AirlockError } from '@airlock/core';
import { AirlockApiError } from '@airlock/sdk';
import type { McpConfig, ToolContext } from '@airlock/mcp';
import type { Command } from '../context.ts';
import { UsageError } from '../args.ts';

export const mcpCommand: Command = {
  name: 'mcp',
  summary: 'serve Airlock to an LLM agent as MCP tools (stdio, or --http)',
  usage: [
    'airlock mcp [--session-file PATH] [--rpc eip155:ID=URL]…                  MCP over stdin/stdout (what Claude Desktop and most clients spawn)',
    'airlock mcp --http [--host 127.0.0.1] [--port 8421] [--session-file PATH]  MCP over Streamable HTTP at http://HOST:PORT/mcp',
    'the session token comes from $AIRLOCK_SESSION or the file $AIRLOCK_SESSION_FILE / --session-file names (never an argument);',
    'the daemon from --url or $AIRLOCK_URL; RPC URLs for broadcasting from $AIRLOCK_EVM_RPC and --rpc. See docs/mcp.md.',
  ].join('\n'),
  options: { http: { type: 'boolean' }, host: { type: 'string' }, port: { type: 'string' }, 'session-file': { type: 'string' }, rpc: { type: 'string', multiple: true } },
  async run(ctx, { values }) {
    const port = values.port === undefined ? 8421 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port: expected 0-65535');
    // Loaded here, not at the top: every other command would otherwise pay for loading the MCP SDK.
    const { createAirlockMcpServer, createRedactor, createToolContext, McpConfigError, readMcpConfig, serveHttp, serveStdio } = await import('@airlock/mcp');
    let config: McpConfig;
    try {
      config = readMcpConfig(process.env, { url: ctx.url, ...(values['session-file'] ? { sessionFile: String(values['session-file']) } : {}), rpc: (values.rpc as string[] | undefined) ?? [] });
    } catch (e) {
      if (e instanceof McpConfigError) throw new AirlockError('invalid_request', e.message);
      throw e;
    }
    const tools = createToolContext(config);
    const redact = createRedactor(config);
    await checkSession(tools.http);
    if (!values.http) {
      // stdout carries the protocol from here on: anything else goes to stderr.
      await serveStdio(createAirlockMcpServer(tools, redact));
      return;
    }
    const running = await serveHttp(() => createAirlockMcpServer(tools, redact), { host: values.host ? String(values.host) : '127.0.0.1', port });
    console.log(`Airlock MCP listening on ${running.url}`);
    await new Promise<void>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
    });
    await running.close();
  },
};

/**
 * A bad or expired token is a configuration error: say so at once rather than on the model's first call.
 * An unreachable daemon is not: the client may start us before Airlock is up, and each tool reports it.
 */
async function checkSession(http: ToolContext['http']): Promise<void> {
  try {
    const { body } = await http.request<{ agent: { name: string; address: string } }>('GET', '/v1/session');
    console.error(`airlock mcp: serving agent ${body.agent.name} (${body.agent.address})`);
  } catch (e) {
    // Airlock's own answer (unauthenticated, session_expired, session_revoked…): its code and message say what to fix.
    if (e instanceof AirlockApiError) throw e;
    console.error('airlock mcp: cannot reach the Airlock daemon yet; tools will report airlock_unreachable until it answers.');
  }
}
