import type pg from 'pg';

/**
 * The fidelity table: every column type the foundation promises, NULLs in every column, non-ASCII
 * text, microsecond timestamps. `expectedRows` renders Postgres's values and `warehouseRows` the
 * warehouse's, both into one canonical text form, so a test compares them with a plain deep-equal.
 */
export const FIDELITY_DDL = `
CREATE TABLE fidelity (
  id int8 PRIMARY KEY,
  i2 int2, i4 int4, i8 int8,
  num numeric(12,2), big numeric(38,10),
  f4 float4, f8 float8,
  t text, vc varchar(40),
  b bool, d date, ts timestamp, tstz timestamptz,
  u uuid, j json, jb jsonb,
  ia int[], ta text[],
  by bytea
)`;

export const FIDELITY_EDGE_ROWS = `
INSERT INTO fidelity VALUES
 (1, 32767, 2147483647, 9223372036854775807, 1234567890.12, 1234567890123456789012345678.0123456789, 3.14159, 2.718281828459045,
  E'tab\\there\\nnewline \\\\ backslash "quote" ''single''', 'héllo wörld ☃ 🚀', true, '2024-02-29',
  '2024-01-01 12:34:56.789012', '2024-06-30 23:59:59.999999+02',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2], "s": "ü"}', '{"k": "v", "n": null}',
  '{1,NULL,3}', '{"x","y z",NULL,"quote\\"d","tab\\there"}', '\\x00ff100a09'::bytea),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, -32768, -2147483648, -9223372036854775808, -0.01, 0, 'NaN', '-Infinity', '日本語テキスト', '', false, '1900-01-01',
  '1970-01-01 00:00:00', '2000-01-01 00:00:00.000001+00', '00000000-0000-0000-0000-000000000000', '[]', '[]', '{}', '{}', '\\x'::bytea),
 (4, 0, 0, 0, 0.00, -99999999.9999999999, 'Infinity', 1e-300, 'Ω≈ç√∫', 'varchar', true, '2299-12-31',
  '2262-04-11 23:47:16.854775', '1969-12-31 23:59:59.5-05:30', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '"str"', '{-1}', '{""}', '\\xdeadbeef'::bytea)`;

/** Adds `n` generated rows with ids from `from`. */
export const fidelityRandomRows = (from: number, n: number) => `
INSERT INTO fidelity
SELECT g, (g % 30000)::int2, g * 7, g::int8 * 1000003, (g * 1.37)::numeric(12,2), (g * 3.1415926535)::numeric(38,10),
       (g / 7.0)::float4, g / 3.0::float8, 'row ' || g || ' ñ', 'v' || g, g % 2 = 0, DATE '2020-01-01' + g,
       TIMESTAMP '2021-01-01' + g * INTERVAL '1 second 1 microsecond', TIMESTAMPTZ '2021-01-01 00:00:00+00' + g * INTERVAL '17 microseconds',
       md5(g::text)::uuid, json_build_object('g', g), jsonb_build_object('g', g, 'arr', jsonb_build_array(g, 'x')),
       ARRAY[g, g + 1], ARRAY['a' || g, NULL], decode(md5(g::text), 'hex')
  FROM generate_series(${from}, ${from + n - 1}) g`;

const PG_CANONICAL = `
SELECT id::text, i2::text, i4::text, i8::text, num::text, big::text, f4::text, f8::text, t, vc,
       CASE WHEN b THEN 'true' WHEN NOT b THEN 'false' END AS b, d::text,
       to_char(ts, 'YYYY-MM-DD HH24:MI:SS.US') AS ts, to_char(tstz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS tstz,
       u::text, j::text, jb::text, to_json(ia)::text AS ia, to_json(ta)::text AS ta, encode(by, 'hex') AS by
  FROM fidelity ORDER BY fidelity.id`;

export type CanonicalRow = Record<string, string | null>;

export async function expectedRows(client: pg.Client): Promise<CanonicalRow[]> {
  const rows = (await client.query(PG_CANONICAL)).rows as CanonicalRow[];
  // ClickHouse has no Nullable(Array): a NULL array is [] in the warehouse (documented).
  return rows.map((r) => ({ ...r, ia: canonicalJson(r.ia ?? '[]'), ta: canonicalJson(r.ta ?? '[]') }));
}

/** `final: false` for an append table (a MergeTree, which FINAL does not apply to). */
export const WAREHOUSE_CANONICAL = (table: string, final = true) =>
  `SELECT * EXCEPT (_tributary_synced_at, _tributary_version, _tributary_is_deleted) REPLACE (lower(hex(by)) AS by)
     FROM ${table}${final ? ' FINAL' : ''} ORDER BY id`;

const FLOAT_WORDS: Record<string, string> = { nan: 'NaN', inf: 'Infinity', '-inf': '-Infinity', '+inf': 'Infinity' };

function canonicalJson(text: string): string {
  return JSON.stringify(JSON.parse(text));
}

/** The warehouse's JSON values in the same text form as PG_CANONICAL. */
export function canonicalWarehouseRow(row: Record<string, unknown>): CanonicalRow {
  const out: CanonicalRow = {};
  for (const [k, v] of Object.entries(row)) {
    if (v === null || v === undefined) out[k] = null;
    else if (Array.isArray(v)) out[k] = JSON.stringify(v);
    else if (typeof v === 'boolean') out[k] = String(v);
    else if (typeof v === 'string' && v in FLOAT_WORDS) out[k] = FLOAT_WORDS[v];
    else out[k] = String(v);
  }
  return out;
}

/** The first differences between two canonical row lists (by position), readable in a test failure. */
export function diffRows(expected: CanonicalRow[], actual: CanonicalRow[], limit = 10) {
  const diffs: { row: number; id: string | null | undefined; column: string; expected: unknown; actual: unknown }[] = [];
  if (expected.length !== actual.length) diffs.push({ row: -1, id: undefined, column: '(row count)', expected: expected.length, actual: actual.length });
  for (let i = 0; i < Math.min(expected.length, actual.length) && diffs.length < limit; i++) {
    const cols = new Set([...Object.keys(expected[i]), ...Object.keys(actual[i])]);
    for (const c of cols) {
      if (expected[i][c] !== actual[i][c] && diffs.length < limit) diffs.push({ row: i, id: expected[i].id, column: c, expected: expected[i][c], actual: actual[i][c] });
    }
  }
  return diffs;
}
