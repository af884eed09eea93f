import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCatalog, type Catalog } from '../catalog';
import { closeChangeBatch, failChangeBatch, openChangeBatch, pruneChangeBatches } from '../catalog/change-batches';

/**
 * Retention of the change log's numbering (the platform prunes at start and hourly): batches past the retention
 * are forgotten once closed, done or failed; one still open is kept whatever its age (a reader's horizon waits on
 * it until its lease ends), and so is every batch within the retention.
 */
describe('change batches: pruning past the retention', () => {
  let catalog: Catalog;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-change-batches-'));
    catalog = await openCatalog({ dataDir });
  });

  afterAll(async () => {
    await catalog?.db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('old closed batches go; open ones and recent ones stay', async () => {
    const db = catalog.db;
    const oldDone = await openChangeBatch(db, null, 't');
    const oldFailed = await openChangeBatch(db, null, 't');
    const oldOpen = await openChangeBatch(db, null, 't');
    const recent = await openChangeBatch(db, null, 't');
    await closeChangeBatch(db, oldDone, 3);
    await failChangeBatch(db, oldFailed);
    await closeChangeBatch(db, recent, 1);
    await db.query(`UPDATE change_batches SET opened_at = now() - interval '10 days' WHERE batch = ANY($1::bigint[])`, [[oldDone, oldFailed, oldOpen].map(String)]);

    expect(await pruneChangeBatches(db, new Date(Date.now() - 7 * 86_400_000))).toBe(2);
    const left = await db.query<{ batch: string; state: string }>('SELECT batch::text AS batch, state FROM change_batches ORDER BY batch');
    expect(left.rows).toEqual([
      { batch: String(oldOpen), state: 'open' },
      { batch: String(recent), state: 'done' },
    ]);
    // Nothing more to prune.
    expect(await pruneChangeBatches(db, new Date(Date.now() - 7 * 86_400_000))).toBe(0);
  });
});
