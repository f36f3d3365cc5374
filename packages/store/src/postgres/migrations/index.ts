import { statements as initial } from './001_initial.ts';

/** Every migration, by version, applied in ascending order. Add new ones here explicitly. */
export const postgresMigrations: ReadonlyMap<number, { name: string; statements: string[] }> = new Map([
  [1, { name: '001_initial', statements: initial }],
]);
