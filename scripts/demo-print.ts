// How `npm run demo` talks: numbered steps, ✔ for what went through, ✘ for what Airlock refused, dim notes.
// Shared by the x402 and the L402 chapters so both read alike. Colour only on a terminal (and never with NO_COLOR).
import type { AirlockHttp, Violation } from '@airlock/sdk';

const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
export const bold = paint('1');
export const dim = paint('2');
export const green = paint('32');
export const red = paint('31');
export const yellow = paint('33');
export const cyan = paint('36');

export const say = (s = '') => console.log(s);
export const step = (n: number, title: string) => say(`\n${bold(cyan(`${n}. ${title}`))}`);
export const ok = (s: string) => say(`   ${green('✔')} ${s}`);
export const refused = (s: string) => say(`   ${red('✘')} ${s}`);
export const note = (s: string) => say(`   ${dim(s)}`);

export function describeViolations(violations: Violation[]): string {
  return violations.map((v) => `${bold(v.rule)} ${yellow(v.code)}: ${v.message}`).join('\n     ');
}

/** The first pending approval, as an operator watching `GET /v1/approvals` would find it. */
export async function waitForPendingApproval(admin: AirlockHttp): Promise<{ id: string; summary?: unknown }> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const { body } = await admin.request<{ approvals: { id: string; summary?: unknown }[] }>('GET', '/v1/approvals');
    const first = body.approvals[0];
    if (first) return { id: first.id, ...(first.summary !== undefined ? { summary: first.summary } : {}) };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no approval request arrived');
}
