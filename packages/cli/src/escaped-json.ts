/**
 * A value an agent wrote, as JSON with every control or format character escaped, for a terminal: JSON.stringify
 * escapes C0 controls (CR, LF, ESC); C1 controls (U+009B is a CSI on some terminals) and format characters (bidi
 * overrides, zero-width characters) are escaped here too, so the text cannot redraw or reorder the lines around it.
 * Still valid JSON (they only occur inside strings).
 */
export function escapedJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\p{Cc}\p{Cf}]/gu, (c) =>
    // Per UTF-16 unit: a format character above U+FFFF (tag characters) is a surrogate pair.
    Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''));
}
