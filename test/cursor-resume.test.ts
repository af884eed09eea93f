import { postgresConnector } from '../connectors/postgres';
import type { PostgresConfig } from '../connectors/postgres/config';
import type { Batch, ReadRequest } from '../connectors/types';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * A retried incremental or append attempt resumes from the last batch the warehouse has. Cursors such as
 * `created_at` come in runs of equal values and batches are cut by size, so a batch often ends inside a run:
 * the resumed read must start exactly after that batch's last row — not after the whole run (rows lost), not at
 * its start (rows repeated, in new batches the deduplication tokens don't recognise).
 */
describe('a resumed read continues exactly after the last batch, inside runs of equal cursor values', () => {
  let db: SourceDb;
  let config: PostgresConfig;
  const ROWS = 1000;

  beforeAll(async () => {
    db = await createSourceDb('resume');
    // 100 rows per created_at second; ids shuffled against insertion order so the key order is the real tie-break.
    await db.admin.query(`
      CREATE TABLE events (id int PRIMARY KEY, created_at timestamptz NOT NULL, note text);
      INSERT INTO events SELECT (g * 7919) % ${ROWS} + 1, TIMESTAMPTZ '2024-01-01 00:00:00+00' + (g / 100) * INTERVAL '1 second', 'event ' || g
        FROM generate_series(0, ${ROWS - 1}) g;
      CREATE TABLE text_keyed (code text PRIMARY KEY, created_at timestamptz NOT NULL);
      INSERT INTO text_keyed SELECT 'k' || g || E'\\t''x', TIMESTAMPTZ '2024-01-01 00:00:00+00' + (g / 50) * INTERVAL '1 second' FROM generate_series(0, 299) g;
      CREATE TABLE unkeyed (id int, created_at timestamptz NOT NULL, note text);
      INSERT INTO unkeyed SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + (g / 100) * INTERVAL '1 second', 'log ' || g FROM generate_series(0, ${ROWS - 1}) g;
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    config = postgresConnector.configSchema.parse(connectionPayload(db));
  });

  afterAll(async () => {
    await db?.drop();
  });

  async function read(req: Omit<ReadRequest, 'columns' | 'version'>): Promise<Batch[]> {
    const columns = await postgresConnector.describe(config, req.table);
    const out: Batch[] = [];
    for await (const b of postgresConnector.read(config, { ...req, columns, version: 1n })) out.push(b);
    return out;
  }

  const firstFields = (batches: Batch[]) =>
    batches.flatMap((b) =>
      b.data
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t')[0]),
    );

  for (const mode of ['append', 'incremental'] as const) {
    test(`${mode}: resumed after any batch, the rest is read exactly once, in the same batches`, async () => {
      const req = { table: 'events', mode, cursorField: 'created_at', orderKey: ['id'], batchBytes: 2000 };
      const all = await read(req);
      expect(firstFields(all).length).toBe(ROWS);
      expect(all.length).toBeGreaterThan(10);
      for (let i = 0; i < all.length - 1; i++) {
        const resumed = await read({ ...req, cursor: all[i].cursor, resumeAfter: all[i].resumeAfter });
        // The same bytes as the uninterrupted read's remaining batches: nothing lost, nothing repeated, same tokens.
        expect(resumed.map((b) => b.data.toString('utf8'))).toEqual(all.slice(i + 1).map((b) => b.data.toString('utf8')));
      }
    });
  }

  test('a text key with tabs and quotes resumes exactly too', async () => {
    const req = { table: 'text_keyed', mode: 'append' as const, cursorField: 'created_at', orderKey: ['code'], batchBytes: 300 };
    const all = await read(req);
    expect(all.length).toBeGreaterThan(5);
    for (let i = 0; i < all.length - 1; i++) {
      const resumed = await read({ ...req, cursor: all[i].cursor, resumeAfter: all[i].resumeAfter });
      expect(firstFields([...all.slice(0, i + 1), ...resumed]).sort()).toEqual(firstFields(all).sort());
    }
  });

  test('append without a key: batches end only between distinct cursor values, so resuming after the cursor loses nothing', async () => {
    const req = { table: 'unkeyed', mode: 'append' as const, cursorField: 'created_at', batchBytes: 2000 };
    const all = await read(req);
    expect(all.length).toBeGreaterThan(3);
    for (let i = 0; i < all.length - 1; i++) {
      const resumed = await read({ ...req, cursor: all[i].cursor, resumeAfter: all[i].resumeAfter });
      const ids = firstFields([...all.slice(0, i + 1), ...resumed]).map(Number);
      expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: ROWS }, (_, n) => n));
    }
  });
});
