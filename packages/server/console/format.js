// Display helpers. Amounts stay strings of base units end to end (never a JS number: they can exceed 2^53).

/** `1234567` -> `1,234,567` (digits grouped; no decimals are guessed). */
export function groupDigits(amount) {
  const s = String(amount ?? '');
  return /^\d+$/.test(s) ? s.replace(/\B(?=(\d{3})+(?!\d))/g, ',') : s;
}

/** The readable tail of a CAIP-19 asset id: `eip155:8453/erc20:0x8335…2913`. */
export function shortAsset(asset) {
  const m = /^(.*\/[a-z0-9-]+:)(0x[0-9a-fA-F]{40})$/.exec(asset ?? '');
  return m ? `${m[1]}${m[2].slice(0, 6)}…${m[2].slice(-4)}` : (asset ?? '');
}

export function shortHex(hex, head = 6, tail = 4) {
  const s = String(hex ?? '');
  return s.length > head + tail + 1 ? `${s.slice(0, head)}…${s.slice(-tail)}` : s;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

export function formatClock(ms) {
  return timeOnly.format(new Date(ms));
}

/** `in 12 min`, `3 h ago`: relative to now, for expiries and recent events. */
export function relativeTime(iso, now = Date.now()) {
  const diff = new Date(iso).getTime() - now;
  const abs = Math.abs(diff);
  const unit = abs < 90_000 ? [Math.round(abs / 1000), 's'] : abs < 5_400_000 ? [Math.round(abs / 60_000), 'min'] : abs < 172_800_000 ? [Math.round(abs / 3_600_000), 'h'] : [Math.round(abs / 86_400_000), 'd'];
  return diff >= 0 ? `in ${unit[0]} ${unit[1]}` : `${unit[0]} ${unit[1]} ago`;
}

/** A JSON value for a <pre>: stable and readable. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}
