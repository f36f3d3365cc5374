/** PostgreSQL schema, version 10: the policy text as set (see sqlite/migrations/009_policy_source.ts). */
export const statements: string[] = [`ALTER TABLE policies ADD COLUMN source text`];
