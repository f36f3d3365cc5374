// Entry point of the `airlock` command.
import { main } from './main.ts';

const code = await main(process.argv.slice(2));
// `start` keeps the process alive with its server; every other command exits with its code.
if (process.argv[2] !== 'start' || code !== 0) process.exit(code);
