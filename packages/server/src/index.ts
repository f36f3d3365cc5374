export * from './config.ts';
export * from './runtime.ts';
export * from './serve.ts';
export { createApp } from './http/app.ts';
export { createLogger, parseLogLevel, type Logger, type LogLevel } from './http/request-log.ts';
export { AirlockHolder } from './http/holder.ts';
export { buildOpenApi } from './http/openapi.ts';
export { buildRoutes } from './http/routes.ts';
export { auditAnchorPath, fileAuditAnchorStore, readAuditAnchorFile } from './audit-anchor-file.ts';
