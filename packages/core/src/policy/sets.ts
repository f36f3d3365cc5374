import { invalidPolicyAt, type PolicyPath } from './path.ts';
import { normaliseParty } from './party.ts';

/** Named address sets of one document, normalised (`normaliseParty`: lowercase but for base58 Bitcoin addresses); `$name` references resolve against them. */
export type AddressSets = ReadonlyMap<string, ReadonlySet<string>>;

export function buildSets(raw: Record<string, string[]> | undefined): AddressSets {
  const sets = new Map<string, Set<string>>();
  for (const [name, list] of Object.entries(raw ?? {})) sets.set(name, new Set(list.map(normaliseParty)));
  return sets;
}

function lookup(sets: AddressSets, ref: string, path: PolicyPath): ReadonlySet<string> {
  const set = sets.get(ref.slice(1));
  if (!set) throw invalidPolicyAt(path, `unknown set "${ref}"; define it under sets`);
  return set;
}

/**
 * `$partners` or `["0xabc…", "$routers"]` -> one lowercase Set. A single reference returns the
 * set itself (no copy), so a 10,000-entry set costs nothing per rule that names it.
 */
export function resolveAddressList(raw: string | readonly string[], sets: AddressSets, path: PolicyPath): ReadonlySet<string> {
  if (typeof raw === 'string') return lookup(sets, raw, path);
  if (raw.length === 1 && raw[0]!.startsWith('$')) return lookup(sets, raw[0]!, [...path, 0]);
  const out = new Set<string>();
  raw.forEach((item, i) => {
    if (item.startsWith('$')) for (const a of lookup(sets, item, [...path, i])) out.add(a);
    else out.add(normaliseParty(item));
  });
  return out;
}
