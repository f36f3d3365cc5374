import { statements as initial } from './001_initial.ts';
import { statements as payments } from './002_payments.ts';
import { statements as settledTransfer } from './004_settled_transfer.ts';

/** Every migration, by version, applied in ascending order. Add new ones here explicitly. */
export const postgresMigrations: ReadonlyMap<number, { name: string; statements: string[] }> = new Map([
  [1, { name: '001_initial', statements: initial }],
  [2, { name: '002_payments', statements: payments }],
  [4, { name: '004_settled_transfer', statements: settledTransfer }],
]);
