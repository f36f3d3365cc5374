import type { AirlockHttp } from '../http.ts';

/**
 * The operator's side of an approval test: waits for pending approvals of `agent` other than `known` to appear
 * (polling, not a fixed sleep: a loaded machine may take longer than any guess) and returns them.
 */
export async function waitForNewApprovals(admin: AirlockHttp, agent: string, known: string[], tries = 400): Promise<{ id: string }[]> {
  let fresh: { id: string }[] = [];
  for (let i = 0; i < tries && fresh.length === 0; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 25));
    const { body } = await admin.request<{ approvals: { id: string }[] }>('GET', `/v1/approvals?agent=${agent}`);
    fresh = body.approvals.filter((a) => !known.includes(a.id));
  }
  return fresh;
}
