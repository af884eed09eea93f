import { TSV_NULL } from '../../warehouse/tsv';
import type { MappedColumn } from './types';

/**
 * pgoutput sends each value in Postgres's text output form, which is what COPY renders too — except
 * where the batch path asks Postgres for a different rendering (see `mapColumn`'s selectExpr). These
 * converters turn the pgoutput text into exactly the text the batch path loads, so a row streamed by
 * CDC and the same row loaded by a snapshot are byte-identical in the warehouse.
 * The replication session runs with TimeZone=UTC and DateStyle=ISO, like the batch connections.
 */



/** Parses a Postgres array literal (`{1,"a b",NULL,{2,3}}`) into nested arrays of element text. */
export function parseArrayLiteral(text: string): unknown[] {
  let i = 0;
  // A lower bound other than 1 is printed as a prefix: `[0:2]={…}`.
  if (text[0] === '[') i = text.indexOf('=') + 1;
  const parse = (): unknown[] => {
    if (text[i] !== '{') throw new Error(`malformed array literal: ${text.slice(0, 60)}`);
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') out.push(parse());
      else if (text[i] === '"') {
        let s = '';
        i++;
        while (text[i] !== '"') {
          if (text[i] === '\\') i++;
          s += text[i++];
        }
        i++;
        out.push(s);
      } else {
        let j = i;
        while (text[j] !== ',' && text[j] !== '}') j++;
        const raw = text.slice(i, j);
        out.push(raw === 'NULL' ? null : raw);
        i = j;
      }
      if (text[i] === ',') i++;
      else if (text[i] === '}') {
        i++;
        return out;
      } else throw new Error(`malformed array literal: ${text.slice(0, 60)}`);
    }
  };
  return parse();
}

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** The JSON `to_json(array)` renders for the element types JSON carries exactly; other arrays go via text[]. */
function arrayToJson(text: string, elem: string | null, exact: boolean): string {
  const render = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(render).join(',')}]`;
    if (v === null) return 'null';
    const s = v as string;
    if (exact && elem === 'bool') return s === 't' ? 'true' : 'false';
    if (exact && elem !== null && NUMERIC_ELEMENTS.has(elem) && JSON_NUMBER.test(s)) return s;
    return JSON.stringify(s);
  };
  return render(parseArrayLiteral(text));
}

const NUMERIC_ELEMENTS = new Set(['int2', 'int4', 'int8', 'float8']);
const EXACT_ELEMENTS = new Set(['int2', 'int4', 'int8', 'float8', 'bool', 'text', 'varchar', 'bpchar', 'name']);

/** Converts one pgoutput text value of `col` to the (unescaped) text the batch path would load. */
export function textConverter(col: MappedColumn): (text: string) => string {
  const elem = col.pgType.startsWith('_') ? col.pgType.slice(1) : null;
  if (elem !== null && col.viaRaw) {
    const exact = EXACT_ELEMENTS.has(elem);
    return (t) => arrayToJson(t, elem, exact);
  }
  switch (col.pgType) {
    case 'bytea':
      return (t) => (t.startsWith('\\x') ? t.slice(2) : t);
    case 'timestamptz':
      // The batch path renders `col AT TIME ZONE 'UTC'`; in a UTC session the text differs only by the offset.
      return (t) => (t.endsWith('+00') ? t.slice(0, -3) : t);
    default:
      return (t) => t;
  }
}

/**
 * What a delete (which carries only the key) writes in a non-key column: NULL where the column can
 * hold it, else the type's zero value written out (an empty field would be an empty string, or an error).
 */
export function absentField(col: MappedColumn): string {
  if (col.nullable || col.viaRaw) return TSV_NULL;
  const t = col.type;
  if (/^(U?Int|Float|Decimal)/.test(t)) return '0';
  if (t === 'Bool') return 'false';
  if (t.startsWith('Date32') || t === 'Date') return '1970-01-01';
  if (t.startsWith('DateTime')) return '1970-01-01 00:00:00';
  if (t === 'UUID') return '00000000-0000-0000-0000-000000000000';
  return '';
}
