/** TabSeparated escaping, the same as Postgres COPY's text format: `\\`, `\t`, `\n`, `\r`. */
export function tsvEscape(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : s;
}

export function tsvUnescape(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c === 'N' ? '' : c));
}

export const TSV_NULL = '\\N';
