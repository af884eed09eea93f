import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openCatalog, sealConfig, unsealConfig, maskedConfig, type Catalog } from '../catalog';
import { SecretBox } from '../catalog/secrets';
import { insertSource, getSource } from '../catalog/sources';
import { insertSchema, listSchemas } from '../catalog/schemas';
import { startJob, finishJob, listJobs } from '../catalog/jobs';
import { migrate } from '../catalog/migrate';
import { closeChangeBatch, failChangeBatch, firstChangeBatchSince, openChangeBatch, readableChangeHorizon } from '../catalog/change-batches';
import { getDestination, insertDestination, latestChangeBatch, listDestinations, saveDestinationCheckpoint } from '../catalog/destinations';
import { postgresConnector } from '../connectors/postgres';
import { testEnv } from './support/env';

/** The same migrations and SQL on both catalog engines: PGlite (embedded) and Postgres (DATABASE_URL). */
describe.each(['embedded', 'remote'] as const)('catalog on %s', (mode) => {
  let catalog: Catalog;
  let dataDir: string;
  let dbName: string | undefined;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-catalog-'));
    let databaseUrl: string | undefined;
    if (mode === 'remote') {
      dbName = `catalog_${Math.random().toString(36).slice(2, 8)}`;
      const admin = new pg.Client({ connectionString: testEnv().databaseUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      await admin.end();
      const url = new URL(testEnv().databaseUrl);
      url.pathname = `/${dbName}`;
      databaseUrl = url.toString();
    }
    catalog = await openCatalog({ dataDir, databaseUrl });
  });

  afterAll(async () => {
    await catalog?.db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (dbName) {
      const admin = new pg.Client({ connectionString: testEnv().databaseUrl });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    }
  });

  test('migrations are applied once and re-running them is a no-op', async () => {
    expect(catalog.db.mode).toBe(mode);
    expect(await migrate(catalog.db)).toEqual([]);
    const tables = await catalog.db.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(tables.rows.map((r) => r.t)).toEqual(['alerts', 'cdc_mirrors', 'change_batches', 'destinations', 'jobs', 'schemas', 'sources', 'tributary_migrations', 'webhooks']);
  });

  test('a change-log reader never passes a batch still open, nor a number not yet committed, unless they are stale', async () => {
    const db = catalog.db;
    const start = await readableChangeHorizon(db, 0n, { leaseMs: 60_000 });
    const open = (t: string) => openChangeBatch(db, null, t);
    const b1 = await open('a');
    const b2 = await open('b');
    await closeChangeBatch(db, b2, 5);
    // b1 is still being written: nothing from b1 on may be read, though b2 is done.
    expect(await readableChangeHorizon(db, start, { leaseMs: 60_000 })).toBe(b1 - 1n);
    await closeChangeBatch(db, b1, 3);
    expect(await readableChangeHorizon(db, start, { leaseMs: 60_000 })).toBe(b2);
    const b3 = await open('c');
    expect(await readableChangeHorizon(db, start, { leaseMs: 60_000 })).toBe(b2);
    // A writer that died holding b3: read past it once its lease is over.
    expect(await readableChangeHorizon(db, start, { leaseMs: 0 })).toBe(b3);
    await failChangeBatch(db, b3);
    // A number taken but not (yet) in the table: a writer between nextval and commit.
    await db.query(`SELECT nextval('change_batch_numbers')`);
    const b5 = await open('e');
    await closeChangeBatch(db, b5, 1);
    expect(await readableChangeHorizon(db, b2, { leaseMs: 60_000, gapMs: 60_000 })).toBe(b3);
    expect(await readableChangeHorizon(db, b2, { leaseMs: 60_000, gapMs: 0 })).toBe(b5);
    // A destination starting "now" while b6 is being written starts before it, so b6's changes reach it.
    const b6 = await open('f');
    expect(await latestChangeBatch(db)).toBe(b6 - 1n);
    await closeChangeBatch(db, b6, 1);
    expect(await latestChangeBatch(db)).toBe(b6);
    // Replay from a time: the first batch opened since.
    const before = new Date(Date.now() - 60_000);
    expect(await firstChangeBatchSince(db, before)).toBeLessThanOrEqual(b1);
    expect(await firstChangeBatchSince(db, new Date(Date.now() + 60_000))).toBeNull();
  });

  test('a source round-trips with its password sealed, and is shown masked', async () => {
    const config = { host: 'db', port: 5432, dbname: 'app', user: 'u', password: 'hunter2-secret', schema: 'public', sslmode: 'disable' };
    const sealed = sealConfig(catalog.secrets, postgresConnector.spec, config);
    expect(sealed.config).not.toHaveProperty('password');
    expect(sealed.secrets).not.toContain('hunter2');
    const row = await insertSource(catalog.db, { source_type: 'Postgres', prefix: `p_${mode}`, ...sealed });
    const back = (await getSource(catalog.db, row.id))!;
    expect(unsealConfig(catalog.secrets, back)).toEqual(config);
    expect(maskedConfig(postgresConnector.spec, back)).toMatchObject({ host: 'db', password: '********' });
    await expect(insertSource(catalog.db, { source_type: 'Postgres', prefix: `p_${mode}`, config: {}, secrets: null })).rejects.toMatchObject({ code: '23505' });
  });

  test('jobs: one per workflow run, versions increase, history lists newest first', async () => {
    const source = await insertSource(catalog.db, { source_type: 'Postgres', prefix: `j_${mode}`, config: {}, secrets: null });
    const schema = await insertSchema(catalog.db, source.id, {
      name: 'orders', should_sync: true, sync_type: 'full_refresh', sync_frequency: '6hour',
      incremental_field: null, incremental_field_type: null, primary_key_columns: ['id'],
    });
    expect((await listSchemas(catalog.db, source.id))[0].primary_key_columns).toEqual(['id']);
    const a = await startJob(catalog.db, { schemaId: schema.id, sourceId: source.id, workflowId: 'w', runId: 'r1' });
    const again = await startJob(catalog.db, { schemaId: schema.id, sourceId: source.id, workflowId: 'w', runId: 'r1' });
    expect(again.id).toBe(a.id); // a retried activity reuses its job
    const b = await startJob(catalog.db, { schemaId: schema.id, sourceId: source.id, workflowId: 'w', runId: 'r2' });
    expect(BigInt(b.sync_version)).toBeGreaterThan(BigInt(a.sync_version));
    await finishJob(catalog.db, a.id, { status: 'Failed', rows: 0, error: 'boom' });
    const jobs = await listJobs(catalog.db, { schemaId: schema.id, limit: 10 });
    expect(jobs.map((j) => j.id)).toEqual([b.id, a.id]);
    expect(jobs[1]).toMatchObject({ status: 'Failed', latest_error: 'boom' });
    expect((await listJobs(catalog.db, { schemaId: schema.id, status: 'Running', limit: 10 })).map((j) => j.id)).toEqual([b.id]);
  });

  test('a destination checkpoint past the end of a batch (seq 4294967295, the change log\'s UInt32 maximum) reads back', async () => {
    const d = await insertDestination(catalog.db, {
      id: crypto.randomUUID(), name: `d_${mode}`, type: 'webhook', secrets: null, enabled: true, checkpoint_batch: 5n,
      config: { url: 'https://example.com/', method: 'POST', headers: {}, secret_headers: [], filters: {}, batch_size: 1, timeout_ms: 10_000 },
    });
    expect(d.checkpoint_seq).toBe(0);
    await saveDestinationCheckpoint(catalog.db, d.id, 7n, 4_294_967_295);
    expect(await getDestination(catalog.db, d.id)).toMatchObject({ checkpoint_batch: '7', checkpoint_seq: 4_294_967_295 });
    expect((await listDestinations(catalog.db)).find((x) => x.id === d.id)?.checkpoint_seq).toBe(4_294_967_295);
  });
});

describe('SecretBox', () => {
  const key = 'ab'.repeat(32);

  test('seals with a fresh nonce each time and opens what it sealed', () => {
    const box = new SecretBox(key);
    const a = box.seal({ password: 'x' });
    const b = box.seal({ password: 'x' });
    expect(a).not.toBe(b);
    expect(box.open(a)).toEqual({ password: 'x' });
  });

  test('refuses a tampered envelope and a different key', () => {
    const box = new SecretBox(key);
    const sealed = box.seal({ password: 'x' });
    const parts = sealed.split(':');
    const ct = Buffer.from(parts[3], 'base64');
    ct[0] ^= 1;
    expect(() => box.open([...parts.slice(0, 3), ct.toString('base64')].join(':'))).toThrow(/Cannot decrypt/);
    expect(() => new SecretBox('cd'.repeat(32)).open(sealed)).toThrow(/TRIBUTARY_SECRET_KEY/);
  });

  test('rejects a key that is not 32 bytes of hex', () => {
    expect(() => new SecretBox('short')).toThrow(/64 hex characters/);
  });

  test('a generated key is kept in the data dir with mode 0600 and reused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-key-'));
    const sealed = SecretBox.fromConfig({ dataDir: dir }).seal('v');
    expect(fs.statSync(path.join(dir, 'secret-key')).mode & 0o777).toBe(0o600);
    expect(SecretBox.fromConfig({ dataDir: dir }).open(sealed)).toBe('v');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
