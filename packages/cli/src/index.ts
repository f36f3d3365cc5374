export { main } from './main.ts';
export { verifyExport, EXPORT_FORMAT } from './commands/audit.ts';
