// Text an agent wrote, drawn so that an operator sees every character it holds (found by review: on the approval
// card a U+202E reversed the rest of a line, a Cyrillic а drew exactly like a Latin a, and 400 spaces hid what
// followed them). Printable ASCII is drawn as is. Characters drawn as nothing or that move other text (controls,
// bidi and zero-width format characters, separators, unassigned code points, lone surrogates) are never drawn:
// a badge names them instead, `⟨U+202E⟩`. Other non-ASCII characters are drawn, highlighted, with their code points
// in the title. Text only: Preact elements and text nodes, never HTML.
import { html } from './html.js';

/** Never drawn: shown as a code-point badge. */
const HIDDEN = /^[\p{Cc}\p{Cf}\p{Cn}\p{Co}\p{Cs}\p{Z}\p{Default_Ignorable_Code_Point}]$/u;
const BIDI = /^\p{Bidi_Control}$/u;
/** A run of this many ASCII spaces inside a value is padding: shown as `⟨400 spaces⟩`. */
const SPACE_RUN = 8;
const NAMES = {
  0x09: 'CHARACTER TABULATION', 0x0a: 'LINE FEED', 0x0d: 'CARRIAGE RETURN', 0xa0: 'NO-BREAK SPACE', 0xad: 'SOFT HYPHEN',
  0x061c: 'ARABIC LETTER MARK', 0x200b: 'ZERO WIDTH SPACE', 0x200c: 'ZERO WIDTH NON-JOINER', 0x200d: 'ZERO WIDTH JOINER',
  0x200e: 'LEFT-TO-RIGHT MARK', 0x200f: 'RIGHT-TO-LEFT MARK', 0x2028: 'LINE SEPARATOR', 0x2029: 'PARAGRAPH SEPARATOR',
  0x202a: 'LEFT-TO-RIGHT EMBEDDING', 0x202b: 'RIGHT-TO-LEFT EMBEDDING', 0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE', 0x202e: 'RIGHT-TO-LEFT OVERRIDE', 0x2060: 'WORD JOINER', 0x2066: 'LEFT-TO-RIGHT ISOLATE',
  0x2067: 'RIGHT-TO-LEFT ISOLATE', 0x2068: 'FIRST STRONG ISOLATE', 0x2069: 'POP DIRECTIONAL ISOLATE', 0xfeff: 'ZERO WIDTH NO-BREAK SPACE (BOM)',
};

/** `U+202E`. */
export function codePoint(cp) {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `U+202E RIGHT-TO-LEFT OVERRIDE (bidi control)`: what a badge's title and the card's summary say of a hidden one. */
export function describeHidden(cp) {
  const what = BIDI.test(String.fromCodePoint(cp)) ? 'bidi control: reorders the text around it' : 'invisible or control character';
  return `${codePoint(cp)}${NAMES[cp] ? ` ${NAMES[cp]}` : ''} (${what})`;
}

/**
 * Splits text into what is drawn and how: `{type: 'text', text}`, `{type: 'non-ascii', text}`,
 * `{type: 'hidden', cp, count}` (a run of one hidden code point), `{type: 'spaces', count}`.
 * `json`: the text is JSON.stringify(value, null, 2) output, whose line breaks and indentation are its own (it
 * escapes every line break inside a string), so they are drawn as is. `ours`: characters the daemon or this page
 * wrote into the text (the `…` of a shortened id in a summary), drawn as is.
 */
export function segmentText(text, { json = false, ours = '' } = {}) {
  const chars = [...String(text ?? '')];
  const out = [];
  const append = (type, s) => {
    const last = out[out.length - 1];
    if (last?.type === type) last.text += s;
    else out.push({ type, text: s });
  };
  let lineStart = true;
  for (let i = 0; i < chars.length; ) {
    const ch = chars[i];
    if (ch === ' ') {
      let j = i;
      while (chars[j] === ' ') j++;
      if (j - i >= SPACE_RUN && !(json && lineStart)) out.push({ type: 'spaces', count: j - i });
      else append('text', ' '.repeat(j - i));
      i = j;
      lineStart = false;
      continue;
    }
    if (json && ch === '\n') {
      append('text', ch);
      lineStart = true;
      i++;
      continue;
    }
    lineStart = false;
    const cp = ch.codePointAt(0);
    if ((cp > 0x20 && cp < 0x7f) || ours.includes(ch)) append('text', ch);
    else if (HIDDEN.test(ch)) {
      let j = i;
      while (chars[j] === ch) j++;
      out.push({ type: 'hidden', cp, count: j - i });
      i = j;
      continue;
    } else append('non-ascii', ch);
    i++;
  }
  return out;
}

/**
 * What in these texts is not printable ASCII: `{hidden: Map<cp, count>, nonAscii: Map<cp, count>, spaceRun}`
 * (the longest run of padding spaces). `texts`: strings, or `{text, json, ours}` (see segmentText).
 */
export function unusualCharacters(texts) {
  const hidden = new Map();
  const nonAscii = new Map();
  let spaceRun = 0;
  for (const t of texts) {
    const [text, options] = typeof t === 'object' && t !== null ? [t.text, t] : [t, {}];
    for (const s of segmentText(text, options)) {
      if (s.type === 'hidden') hidden.set(s.cp, (hidden.get(s.cp) ?? 0) + s.count);
      else if (s.type === 'spaces') spaceRun = Math.max(spaceRun, s.count);
      else if (s.type === 'non-ascii') for (const ch of s.text) nonAscii.set(ch.codePointAt(0), (nonAscii.get(ch.codePointAt(0)) ?? 0) + 1);
    }
  }
  return { hidden, nonAscii, spaceRun, any: hidden.size > 0 || nonAscii.size > 0 || spaceRun > 0 };
}

/** Agent-written text, every character visible (see the top of this file). `json`, `ours`: see segmentText. */
export function MarkedText({ text, json = false, ours = '' }) {
  return segmentText(text, { json, ours }).map((s) => {
    if (s.type === 'text') return s.text;
    if (s.type === 'spaces') return html`<span class="cp-badge cp-spaces" title=${`${s.count} spaces in a row (padding can push text out of sight)`}>⟨${s.count} spaces⟩</span>`;
    if (s.type === 'hidden') return html`<span class="cp-badge" title=${`${describeHidden(s.cp)}: not drawn, shown as its code point`}>⟨${codePoint(s.cp)}${s.count > 1 ? ` ×${s.count}` : ''}⟩</span>`;
    const cps = [...s.text].map((ch) => codePoint(ch.codePointAt(0)));
    const listed = cps.length > 12 ? `${cps.slice(0, 12).join(' ')} … (${cps.length} characters)` : cps.join(' ');
    return html`<mark class="non-ascii" title=${`not ASCII: ${listed}`}>${s.text}</mark>`;
  });
}

/**
 * One line for a card: which characters outside printable ASCII the agent's text holds, or null when none.
 * `found`: unusualCharacters(...) of that text.
 */
export function UnusualCharactersNote({ found }) {
  if (!found.any) return null;
  const list = (cps, describe) => {
    const shown = cps.slice(0, 10).map((cp, i) => html`${i ? ', ' : ''}${describe(cp)}`);
    return cps.length > 10 ? html`${shown} and ${cps.length - 10} more` : shown;
  };
  // The character itself goes through MarkedText too: an RTL letter is isolated there, not free to reorder this line.
  const nonAscii = (cp) => html`${codePoint(cp)} <${MarkedText} text=${String.fromCodePoint(cp)} />`;
  const parts = [
    found.hidden.size ? html`characters never drawn here, shown as badges <code>⟨U+…⟩</code>: ${list([...found.hidden.keys()], describeHidden)}` : null,
    found.nonAscii.size ? html`non-ASCII characters, drawn highlighted (a look-alike letter can pass for an ASCII one): ${list([...found.nonAscii.keys()], nonAscii)}` : null,
    found.spaceRun ? html`padding of up to ${found.spaceRun} spaces in a row, shown as a badge` : null,
  ].filter(Boolean);
  return html`<p class="note note-warn" data-warning="characters"><strong>Check the characters:</strong> what the agent sent holds ${parts.map((p, i) => html`${i ? '; ' : ''}${p}`)}. Read them before approving.</p>`;
}
