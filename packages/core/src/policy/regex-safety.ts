import { intersects, parseRegex, type CharSet, type RegexNode } from './regex-syntax.ts';

/**
 * Whether an operator's regular expression can stall a backtracking matcher (V8's Irregexp) on an agent's text.
 * Returns why it can, or undefined when it provably cannot take more than linear time per start position
 * (so at most quadratic over the bounded text `RegExp.test` scans: MAX_MESSAGE_PATTERN_INPUT, MAX_PATTERN_INPUT).
 *
 * Why not V8's linear engine: `--enable-experimental-regexp-engine` (flag `l`) rejects unicode mode (`/…/lu` is
 * "cannot be executed in linear time" for every pattern, Node 24), and its fallback on excessive backtracks never
 * engages for a `u` pattern (`/^(a+)+$/u` still took 10 s on 29 characters with it); policies compile with `u`.
 * The flags are also process-wide V8 options that every entry point (daemon, CLI, threshold node, tests, embedders)
 * would have to set before any regex compiles. Why not re2/re2js: a native build (re2) or another dialect (re2js:
 * no lookarounds, other escapes) would change what stored patterns mean.
 *
 * The check (Weideman et al., "Analyzing matching time behavior of backtracking regular expression matchers by
 * using ambiguity of NFA", 2016): a backtracking matcher explores every path of the pattern's automaton that reads
 * a prefix of the text. If no two different paths read the same text into the same state (the automaton is
 * unambiguous on prefixes), the paths alive at any point are at most one per state, and the work per start position
 * is linear in the text. Exponential (`(a+)+`, `(a|a)*`) and polynomial (`.*.*x`, `\d+\d+x`, `.*foo.*bar`)
 * blow-ups all need two such paths, so this refuses them all; so does some harmless ambiguity (`(a|ab)(c|bc)d`):
 * the check is sound, not complete. Backreferences (no automaton bounds them) are refused outright, and so is a
 * lookaround that is not a short fixed sequence (it runs a search of its own at every position, which the automaton
 * does not see), as are patterns too long, or with too many loops, for the linear bound to mean little (MAX_SOURCE,
 * MAX_LOOPS).
 */
export function backtrackingRisk(source: string): string | undefined {
  // A policy's patterns are checked when it is set, and again each time it is compiled (load, every rule's own match).
  if (verdicts.has(source)) return verdicts.get(source);
  const risk = analyse(source);
  if (verdicts.size >= MAX_REMEMBERED) verdicts.clear();
  verdicts.set(source, risk);
  return risk;
}

const verdicts = new Map<string, string | undefined>();
const MAX_REMEMBERED = 1_000;

function analyse(source: string): string | undefined {
  let tree: RegexNode;
  try {
    tree = parseRegex(source);
  } catch {
    return 'not a pattern this check can read';
  }
  if (Array.from(source).length > MAX_SOURCE) return `longer than ${MAX_SOURCE} characters: too long to prove that matching it takes linear time (and checking it would take long)`;
  if (!anchoredAtStart(source, tree) && loopCount(tree) > MAX_LOOPS) return `more than ${MAX_LOOPS} unbounded loops (*, +, {n,}) in a pattern not anchored with ^: an unanchored search starts each one anew at every position, which multiplies the time over a long text; use fewer, or anchor the pattern`;
  return structuralRisk(tree, false) ?? ambiguityRisk(tree);
}

/**
 * Longest pattern checked, in characters. The check's cost grows with the pattern (`'a?'.repeat(2000)` took 4 to 6 s
 * and 400 to 770 MB to check: found by review), and a policy's patterns are checked when it is set and compiled.
 */
const MAX_SOURCE = 512;
/**
 * Unbounded loops in one pattern not anchored with `^`. Linear per start position hides a factor: the paths alive at
 * once. An unanchored alternation of 40 leading loops (`[a-z]+0A|[a-z]+1A|…`) took 8.5 to 11 s over 16,384 letters
 * (found by review); one took 0.14 s, four 0.58 s, eight 1.3 s on this machine kind, loaded. A pattern anchored at
 * its start is tried from one position only.
 */
const MAX_LOOPS = 4;

/** Whether every match must start at the text's start: the pattern opens with `^` outside any alternation. */
function anchoredAtStart(source: string, tree: RegexNode): boolean {
  return source.startsWith('^') && tree.kind !== 'alternation';
}
/** Characters a lookaround may test: it runs again at every position it is tried from (a 300-character one inside a loop took 8 s). */
const MAX_LOOKAROUND = 32;

function loopCount(node: RegexNode): number {
  switch (node.kind) {
    case 'sequence':
      return node.items.reduce((n, item) => n + loopCount(item), 0);
    case 'alternation':
      return node.options.reduce((n, option) => n + loopCount(option), 0);
    case 'repeat':
      return (node.max === Infinity ? 1 : 0) + loopCount(node.body);
    case 'lookaround':
      return loopCount(node.body);
    default:
      return 0;
  }
}

/**
 * Why a lookaround's contents could take more than constant time at each position, or undefined. A lookaround is a
 * backtracking sub-match of its own, run at every position it is tried from, and the automaton check reads it as
 * matching nothing: so only a fixed sequence of at most MAX_LOOKAROUND characters (and assertions) is accepted, no
 * alternative, no quantifier, no lookaround inside (found by review: `(?=(?:a|[ab])…c)` written out 22 times took
 * 29 s on 200 characters, accepted).
 */
function lookaroundRisk(body: RegexNode): string | undefined {
  const chars = fixedChars(body);
  if (chars === undefined) return 'a lookaround holding alternatives, quantifiers or another lookaround runs a search of its own at every position it is tried from; use a fixed sequence of characters in it';
  if (chars > MAX_LOOKAROUND) return `a lookaround testing more than ${MAX_LOOKAROUND} characters runs at every position it is tried from; shorten it`;
  return undefined;
}

/** The characters a fixed sequence reads (chars and assertions only), or undefined when it is not one. */
function fixedChars(node: RegexNode): number | undefined {
  if (node.kind === 'char') return 1;
  if (node.kind === 'assertion') return 0;
  if (node.kind !== 'sequence') return undefined;
  let n = 0;
  for (const item of node.items) {
    const c = fixedChars(item);
    if (c === undefined) return undefined;
    n += c;
  }
  return n;
}

/** Automaton positions at most: larger patterns (large counted repetitions) are refused as too complex to prove safe. */
const MAX_POSITIONS = 2_000;
/** Counted repetitions are unrolled up to this many copies; beyond it, `x{m,n}` is analysed as `x{32}x*` (a superset). */
const MAX_UNROLL = 32;
/** Steps of the pair search before the pattern is refused as too complex to prove safe. */
const MAX_STEPS = 1_000_000;

const TOO_COMPLEX = 'too complex to prove that matching it takes linear time; simplify it (fewer or smaller counted repetitions)';

function structuralRisk(node: RegexNode, inLookaround: boolean): string | undefined {
  switch (node.kind) {
    case 'backreference':
      return 'a backreference (\\1, \\k<name>) can make matching take exponential time; match the text without it';
    case 'char':
    case 'assertion':
      return undefined;
    case 'lookaround':
      return lookaroundRisk(node.body) ?? structuralRisk(node.body, true);
    case 'sequence':
      for (const item of node.items) {
        const risk = structuralRisk(item, inLookaround);
        if (risk) return risk;
      }
      return undefined;
    case 'alternation': {
      if (node.options.filter(matchesEmpty).length > 1) return 'two alternatives of a group both match empty text: two ways to match the same text';
      for (const option of node.options) {
        const risk = structuralRisk(option, inLookaround);
        if (risk) return risk;
      }
      return undefined;
    }
    case 'repeat':
      if (inLookaround && node.max > 1) return 'a repeating quantifier inside a lookaround runs again at every position it is tried from; use a fixed-length lookaround';
      if (node.max > 1 && matchesEmpty(node.body)) return 'a repeated group that can match empty text (a quantifier over something optional)';
      return structuralRisk(node.body, inLookaround);
  }
}

function matchesEmpty(node: RegexNode): boolean {
  switch (node.kind) {
    case 'char':
      return false;
    case 'backreference':
    case 'assertion':
    case 'lookaround':
      return true;
    case 'sequence':
      return node.items.every(matchesEmpty);
    case 'alternation':
      return node.options.some(matchesEmpty);
    case 'repeat':
      return node.min === 0 || matchesEmpty(node.body);
  }
}

/** Glushkov automaton: one state per character position, 0 the start; `edges[p]` maps a successor to how many ways lead there. */
interface Automaton {
  sets: CharSet[];
  edges: Map<number, number>[];
}

interface Fragment {
  nullable: boolean;
  first: number[];
  last: number[];
}

class TooComplex extends Error {}

function buildAutomaton(tree: RegexNode): Automaton {
  const sets: CharSet[] = [[]];
  const edges: Map<number, number>[] = [new Map()];
  const link = (from: readonly number[], to: readonly number[]) => {
    for (const f of from) for (const t of to) edges[f]!.set(t, (edges[f]!.get(t) ?? 0) + 1);
  };
  const empty = (): Fragment => ({ nullable: true, first: [], last: [] });
  const concat = (a: Fragment, b: Fragment): Fragment => {
    link(a.last, b.first);
    return {
      nullable: a.nullable && b.nullable,
      first: a.nullable ? [...a.first, ...b.first] : a.first,
      last: b.nullable ? [...a.last, ...b.last] : b.last,
    };
  };
  const optional = (f: Fragment): Fragment => ({ ...f, nullable: true });

  function build(node: RegexNode): Fragment {
    switch (node.kind) {
      case 'char': {
        if (sets.length > MAX_POSITIONS) throw new TooComplex();
        const id = sets.push(node.set) - 1;
        edges.push(new Map());
        return { nullable: false, first: [id], last: [id] };
      }
      // A zero-width test passes or not: read as always passing, the automaton only gains paths (safe side).
      case 'assertion':
      case 'lookaround':
      case 'backreference':
        return empty();
      case 'sequence':
        return node.items.reduce((acc, item) => concat(acc, build(item)), empty());
      case 'alternation': {
        const parts = node.options.map(build);
        return { nullable: parts.some((p) => p.nullable), first: parts.flatMap((p) => p.first), last: parts.flatMap((p) => p.last) };
      }
      case 'repeat': {
        const { body } = node;
        const unbounded = node.max === Infinity || node.max > MAX_UNROLL;
        const mandatory = Math.min(node.min, MAX_UNROLL);
        let acc = empty();
        if (unbounded) {
          // x{m,} as x{m-1} x+ (x+ is one loop, as the matcher runs it), x* as one loop.
          for (let i = 0; i < mandatory - 1; i++) acc = concat(acc, build(body));
          const loop = build(body);
          link(loop.last, loop.first);
          return concat(acc, mandatory === 0 ? optional(loop) : loop);
        }
        for (let i = 0; i < mandatory; i++) acc = concat(acc, build(body));
        // x{m,n}: n-m nested optional copies, x(x(x)?)?, each reachable only after the one before.
        let tail = empty();
        for (let i = 0; i < node.max - mandatory; i++) tail = optional(concat(build(body), tail));
        return concat(acc, tail);
      }
    }
  }

  const whole = build(tree);
  link([0], whole.first);
  return { sets, edges };
}

/**
 * Searches pairs of paths that read the same text from the start: the pair (p, q) with `split` when the two paths
 * have differed somewhere. Two paths that differ and stand in the same state are two ways to match the same text.
 */
function ambiguityRisk(tree: RegexNode): string | undefined {
  let automaton: Automaton;
  try {
    automaton = buildAutomaton(tree);
  } catch (e) {
    if (e instanceof TooComplex) return TOO_COMPLEX;
    throw e;
  }
  const { sets } = automaton;
  const edges = automaton.edges.map((e) => [...e]);
  const seen = new Set<number>();
  const size = sets.length;
  // Paths that have not differed stand in one state: (p, p, same). Split pairs are unordered: (min, max).
  const key = (p: number, q: number, split: boolean) => (split ? 1 + Math.min(p, q) * size + Math.max(p, q) : -1 - p);
  const queue: [number, number, boolean][] = [[0, 0, false]];
  seen.add(key(0, 0, false));
  let steps = 0;
  while (queue.length > 0) {
    const [p, q, split] = queue.pop()!;
    for (const [p2, waysP] of edges[p]!) {
      for (const [q2] of edges[q]!) {
        if (++steps > MAX_STEPS) return TOO_COMPLEX;
        if (!split && p2 !== q2) {
          if (q2 < p2) continue; // the mirror pair is searched from (q2, p2)
        }
        if (!intersects(sets[p2]!, sets[q2]!)) continue;
        // Paths that were one and take the same step along a doubled edge (`(a+)+`: the inner and the outer loop).
        const doubled = !split && p === q && p2 === q2 && waysP > 1;
        if ((split || doubled) && p2 === q2) return 'two different ways to match the same text (nested quantifiers such as (a+)+, adjacent quantifiers over overlapping characters such as \\d+\\d+ or .*x.*, or overlapping alternatives under a quantifier such as (a|ab)*): backtracking can take exponential or polynomial time';
        const next: [number, number, boolean] = [p2, q2, split || p2 !== q2];
        const k = key(...next);
        if (!seen.has(k)) {
          seen.add(k);
          queue.push(next);
        }
      }
    }
  }
  return undefined;
}
