import type { z } from 'zod';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { ToolContext } from '../context.ts';

/** One MCP tool: its JSON input schema (zod shape, with descriptions the model reads) and what it does. */
export interface AirlockTool<Shape extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  input: Shape;
  annotations: ToolAnnotations;
  run(ctx: ToolContext, args: z.infer<z.ZodObject<Shape>>): Promise<Record<string, unknown>>;
}

export function defineTool<Shape extends z.ZodRawShape>(tool: AirlockTool<Shape>): AirlockTool<Shape> {
  return tool;
}
