/** TabSeparated escaping, the same as Postgres COPY's text format: `\\`, `\t`, `\n`, `\r`. */
export function tsvEscape(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : s;
}

export function tsvUnescape(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c === 'N' ? '' : c));
}

export const TSV_NULL = '\\N';

const pad2 = (n: number) => String(n).padStart(2, '0');

/** Unix seconds as ClickHouse's DateTime text, in UTC: `2026-11-29 19:40:51`. */
export function unixSecondsText(seconds: number): string {
  const d = new Date(seconds * 1000);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
}
