import fs from 'node:fs';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * Differential test: random rounds of inserts, updates and deletes on Postgres, a sync after each,
 * then the whole-table hash of ClickHouse `FINAL` compared with Postgres's — for full refresh
 * (sees everything), incremental (sees inserts and updates) and append (sees inserts).
 * The random sequence is seeded, so a failure replays exactly.
 */
const SEED = Number(process.env.DIFF_SEED ?? 20261122);
const ROUNDS = 5;

function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const ROW_TEXT_PG = `id::text || '|' || coalesce(v, '<null>') || '|' || coalesce(cents::text, '<null>') || '|' ||
  ((extract(epoch FROM updated_at) * 1000000)::bigint)::text`;
const ROW_TEXT_CH = `concat(toString(id), '|', ifNull(v, '<null>'), '|', ifNull(toString(cents), '<null>'), '|', toString(toUnixTimestamp64Micro(updated_at)))`;

describe(`differential: random changes, a sync after each round (seed ${SEED})`, () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;
  let schemaIds: Record<string, string>;
  const finished: Record<string, number> = {};
  const random = prng(SEED);
  let clock = 0; // updated_at advances with every write, as a real updated_at would
  let nextId = 1;

  const tables = { diff_full: 'full_refresh', diff_inc: 'incremental', diff_app: 'append' } as const;

  async function hashes(table: string) {
    const pg = (await db.admin.query(`SELECT count(*)::text AS n, md5(coalesce(string_agg(${ROW_TEXT_PG}, E'\\n' ORDER BY id), '')) AS h FROM ${table}`)).rows[0];
    const ch = (
      await query(
        platform,
        `SELECT toString(count()) AS n, lower(hex(MD5(arrayStringConcat(arrayMap(x -> x.2, arraySort(x -> x.1, groupArray((id, ${ROW_TEXT_CH})))), '\\n')))) AS h
           FROM dif_${table} ${table === 'diff_app' ? '' : 'FINAL'}`,
      )
    )[0];
    return { pg: { n: pg.n, h: pg.h }, ch: { n: ch.n, h: ch.h } };
  }

  async function randomRound() {
    const ts = () => `TIMESTAMPTZ '2024-01-01 00:00:00+00' + ${++clock} * INTERVAL '1 millisecond'`;
    const value = () => (random() < 0.1 ? 'NULL' : `'v${Math.floor(random() * 1e6)} ✓'`);
    const cents = () => (random() < 0.1 ? 'NULL' : String(Math.floor(random() * 1e9) - 5e8));
    const inserts = 20 + Math.floor(random() * 80);
    for (let i = 0; i < inserts; i++) {
      const id = nextId++;
      for (const t of Object.keys(tables)) {
        await db.admin.query(`INSERT INTO ${t} VALUES (${id}, ${value()}, ${cents()}, ${ts()})`);
      }
    }
    const ids = (await db.admin.query(`SELECT id FROM diff_full`)).rows.map((r) => Number(r.id));
    const pick = () => ids[Math.floor(random() * ids.length)];
    for (let i = 0, n = Math.floor(random() * 40); i < n; i++) {
      const id = pick();
      const set = `v = ${value()}, cents = ${cents()}, updated_at = ${ts()}`;
      await db.admin.query(`UPDATE diff_full SET ${set} WHERE id = ${id}`);
      await db.admin.query(`UPDATE diff_inc SET ${set} WHERE id = ${id}`);
    }
    for (let i = 0, n = Math.floor(random() * 15); i < n; i++) await db.admin.query(`DELETE FROM diff_full WHERE id = ${pick()}`);
  }

  async function syncAll() {
    for (const name of Object.keys(tables)) {
      const res = await platform.api('POST', `/api/schemas/${schemaIds[name]}/sync`);
      expect(res.status).toBe(202);
    }
    for (const name of Object.keys(tables)) {
      finished[name] = (finished[name] ?? 1) + 1;
      const job = await waitForJobs(platform, schemaIds[name], finished[name]);
      expect({ name, status: job.status, error: job.latest_error }).toEqual({ name, status: 'Completed', error: null });
    }
  }

  beforeAll(async () => {
    db = await createSourceDb('diff');
    for (const t of Object.keys(tables)) {
      await db.admin.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, v text, cents bigint, updated_at timestamptz NOT NULL)`);
    }
    await db.admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user}`);
    dataDir = makeDataDir('diff');
    platform = await startPlatform({ dataDir });
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'dif',
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'diff_full', should_sync: true, sync_type: 'full_refresh', sync_frequency: 'never' },
          { name: 'diff_inc', should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'datetime', sync_frequency: 'never' },
          { name: 'diff_app', should_sync: true, sync_type: 'append', incremental_field: 'id', incremental_field_type: 'integer', sync_frequency: 'never' },
        ],
      },
    });
    expect(res.status).toBe(201);
    schemaIds = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    for (const name of Object.keys(tables)) await waitForJobs(platform, schemaIds[name], 1);
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test.each(Array.from({ length: ROUNDS }, (_, i) => i + 1))('round %i: every table hashes equal to its source', async () => {
    await randomRound();
    await syncAll();
    for (const t of Object.keys(tables)) {
      const { pg, ch } = await hashes(t);
      expect({ table: t, ...ch }).toEqual({ table: t, ...pg });
    }
  });
});
