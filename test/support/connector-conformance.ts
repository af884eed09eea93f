import type { ZodError } from 'zod';
import { zodDetails } from '../../api/errors';
import { KIND_LABELS } from '../../connectors/kit';
import { connectorFor } from '../../connectors/registry';
import { secretFieldNames, SourceError, type Batch, type Connector, type DiscoveredTable } from '../../connectors/types';
import type { WarehouseColumn } from '../../warehouse/columns';

/**
 * What every API connector must do, as jest tests any connector can run against its local fake of the API:
 * its wizard entry and config schema, a refused credential named as the field to fix, discovery in the shape
 * the schema listing returns, a full read that lands every row the source holds in batches whose columns
 * match, and a read killed between batches that resumes from the last batch's `cursor` without losing a row.
 *
 * A connector's entry (test/connector-conformance.test.ts) is a call of `describeConnectorConformance`.
 */
export interface ConformanceSource {
  /** A payload's connection fields that work against the source (before configSchema). */
  goodConfig: Record<string, unknown>;
  /** The same with a credential the source refuses. */
  badConfig: Record<string, unknown>;
  /** How many rows `table` holds at the source right now. */
  rows(): number | Promise<number>;
  /** Set while the tests run (e.g. the API URL of the fake), restored after. */
  env?: Record<string, string>;
  stop?(): Promise<void>;
}

export interface ConformanceSubject<Config> {
  /** The label of its tests (default: the spec's name). */
  name?: string;
  connector: Connector<Config>;
  /** Starts the source (a local fake of the API, filled with enough rows for several batches). */
  start(): Promise<ConformanceSource>;
  /** The config field holding the credential: a refusal must name it. */
  credentialField: string;
  /** The table read in full. */
  table: string;
  /** The column that identifies a row (default `id`). */
  keyColumn?: string;
  /** Passed as ReadRequest.batchBytes: small enough that the read takes several batches. */
  batchBytes?: number;
  /** Batches consumed before the read is killed (default 2). */
  killAfterBatches?: number;
  /** The resumed read starts exactly after the last batch: it repeats no row. Else repeats are only counted. */
  exactPosition: boolean;
  /** Runs with the counted repeats of the resumed read (e.g. to log them). */
  onRepeats?(repeats: number): void;
}

const DISCOVERED_KEYS: (keyof DiscoveredTable)[] = [
  'table', 'should_sync', 'rows', 'incremental_available', 'append_available', 'cdc_available', 'supports_webhooks',
  'incremental_fields', 'detected_primary_keys', 'available_columns', 'description',
];

/** The rows of a read's batches as text lines, checking each batch's shape on the way. */
async function drain(batches: AsyncIterable<Batch>, columns: string[], opts: { stopAfter?: number } = {}) {
  const lines: string[] = [];
  const cursors: (string | undefined)[] = [];
  for await (const batch of batches) {
    expect(batch.format).toBe('TabSeparated');
    expect(batch.columns).toEqual(columns);
    const text = batch.data.toString('utf8');
    const batchLines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
    expect(batchLines).toHaveLength(batch.rows);
    for (const line of batchLines) expect(line.split('\t')).toHaveLength(columns.length);
    lines.push(...batchLines);
    cursors.push(batch.cursor);
    if (opts.stopAfter !== undefined && batch.rows > 0 && cursors.length >= opts.stopAfter) break;
  }
  return { lines, cursors };
}

export function describeConnectorConformance<Config>(subject: ConformanceSubject<Config>): void {
  const { connector, table, credentialField } = subject;
  const keyColumn = subject.keyColumn ?? 'id';

  describe(`connector conformance: ${subject.name ?? connector.spec.name} (${table})`, () => {
    let source: ConformanceSource;
    let config: Config;
    let columns: WarehouseColumn[];
    let full: { lines: string[]; cursors: (string | undefined)[] };
    const savedEnv: Record<string, string | undefined> = {};

    const read = (cursor?: string) =>
      connector.read(config, { table, mode: 'full_refresh', columns, version: 1n, batchBytes: subject.batchBytes, cursor, heartbeat: () => undefined });
    const rowColumnNames = () => [...columns.map((c) => c.name), '_tributary_version', '_tributary_is_deleted'];
    const keyOf = (line: string) => line.split('\t')[columns.findIndex((c) => c.name === keyColumn)];

    beforeAll(async () => {
      source = await subject.start();
      for (const [k, v] of Object.entries(source.env ?? {})) {
        savedEnv[k] = process.env[k];
        process.env[k] = v;
      }
      config = connector.configSchema.parse(source.goodConfig);
    });

    afterAll(async () => {
      for (const [k, v] of Object.entries(savedEnv)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await source?.stop?.();
    });

    test('spec: a registered wizard entry whose fields are named, labelled, typed; password fields are secret', () => {
      const { spec } = connector;
      expect(connectorFor(spec.name)).toBe(connector);
      expect(spec).toMatchObject({ name: expect.any(String), label: expect.any(String), caption: expect.any(String), featured: expect.any(Boolean), unreleasedSource: expect.any(Boolean) });
      expect(spec.label.length && spec.caption.length).toBeTruthy();
      expect(spec.fields.length).toBeGreaterThan(0);
      for (const f of spec.fields) {
        expect(f).toMatchObject({ name: expect.stringMatching(/^[a-z][a-z0-9_]*$/), label: expect.any(String), required: expect.any(Boolean) });
        expect(['input', 'password', 'switch', 'select', 'file-upload']).toContain(f.type);
        if (f.type === 'password') expect(f.secret).toBe(true);
        if (f.type === 'select') expect(f.options?.length).toBeGreaterThan(0);
      }
      expect(secretFieldNames(spec)).toContain(credentialField);
    });

    test('config schema: accepts the working config, refuses an unknown key naming it', () => {
      expect(connector.configSchema.safeParse(source.goodConfig).success).toBe(true);
      const bad = connector.configSchema.safeParse({ ...source.goodConfig, bogus_setting: 1 });
      expect(bad.success).toBe(false);
      expect(zodDetails(bad.error as ZodError)).toContainEqual({ field: 'bogus_setting', message: expect.stringContaining('"bogus_setting"') });
    });

    test('check: the working config passes; a refused credential is a SourceError naming its field', async () => {
      await connector.check(config);
      const err = await connector.check(connector.configSchema.parse(source.badConfig)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SourceError);
      expect((err as SourceError).field).toBe(credentialField);
      expect((err as SourceError).message.length).toBeGreaterThan(0);
    });

    test('discover: every table in the schema listing shape, not synced by default, columns typed', async () => {
      const tables = await connector.discover(config);
      expect(tables.map((t) => t.table)).toContain(table);
      const kinds = Object.values(KIND_LABELS);
      for (const t of tables) {
        expect(Object.keys(t).sort()).toEqual([...DISCOVERED_KEYS].sort());
        expect(t.should_sync).toBe(false);
        expect(typeof t.description).toBe('string');
        expect(t.available_columns.length).toBeGreaterThan(0);
        for (const c of t.available_columns) {
          expect(c).toEqual({ field: expect.any(String), type: expect.any(String), nullable: expect.any(Boolean) });
          expect(kinds).toContain(c.type);
        }
        for (const k of t.detected_primary_keys) expect(t.available_columns.map((c) => c.field)).toContain(k);
        for (const f of t.incremental_fields) expect(f).toEqual({ field: expect.any(String), type: expect.any(String), label: expect.any(String), nullable: expect.any(Boolean) });
      }
    });

    test(`full read of ${table}: every row the source holds, each batch with the described columns`, async () => {
      columns = await connector.describe(config, table);
      expect(columns.map((c) => c.name)).toContain(keyColumn);
      full = await drain(read(), rowColumnNames());
      expect(full.lines).toHaveLength(await source.rows());
      expect(new Set(full.lines.map(keyOf)).size).toBe(full.lines.length);
      // Enough batches for the kill below to land in the middle.
      expect(full.cursors.length).toBeGreaterThan((subject.killAfterBatches ?? 2) + 1);
    });

    test('a read killed between batches resumes from the last batch’s cursor: no row lost', async () => {
      expect(full).toBeDefined();
      const killAfter = subject.killAfterBatches ?? 2;
      const first = await drain(read(), rowColumnNames(), { stopAfter: killAfter });
      expect(first.lines.length).toBeGreaterThan(0);
      expect(first.lines.length).toBeLessThan(full.lines.length);
      const cursor = first.cursors[first.cursors.length - 1];
      expect(cursor).toEqual(expect.any(String));
      const rest = await drain(read(cursor), rowColumnNames());
      const union = [...first.lines, ...rest.lines];
      expect([...new Set(union)].sort()).toEqual([...full.lines].sort());
      const repeats = union.length - new Set(union.map(keyOf)).size;
      subject.onRepeats?.(repeats);
      if (subject.exactPosition) expect(repeats).toBe(0);
    });
  });
}
