import crypto from 'node:crypto';
import { Context } from '@temporalio/activity';
import { finishJob, startJob, type JobRow } from '../catalog/jobs';
import { observeRun } from '../platform/metrics';
import { alertOnRunEnd } from './alerts';
import { getSchema, markSchemaCompleted, markSchemaFailed, markSchemaRunning } from '../catalog/schemas';
import { getSource } from '../catalog/sources';
import type { IncrementalProgress, IncrementalResult, JobStarted, LoadResult, SyncProgress } from '../common/types';
import type { Batch } from '../connectors/types';
import { ApplicationFailure } from '@temporalio/activity';
import { evolutionWarnings, evolveTable, IncompatibleSchemaChange, tableColumns } from '../warehouse/evolution';
import { keepExistingColumnNames } from '../warehouse/columns';
import { createTableSql, dropTable, markMissingDeleted, sortingKey, swapIn, swapInKeepingPrevious, tableExists, type TableEngine } from '../warehouse/tables';
import { changesRecordedTo, setChangesRecordedTo } from '../catalog/change-marks';
import { appendChangesSql, diffTableName, dropDiffTable, firstLoadChangesSql, refreshChangesSql, refreshDiffKeysSql, writtenChangesSql } from '../warehouse/change-diff';
import { sqlString, type Warehouse } from '../warehouse/client';
import { recordChanges } from './change-recorder';
import { dropEarlierAttempts, Heartbeats, loadSchemaContext, rethrowForGood, stagingPrefix, stagingTableName, testHold, warehouseKey, type ActivityDeps } from './context';
import { dropTablesStartingWith, renameTables } from '../warehouse/table-admin';
import { importAllFiles, importNewFiles } from './files-import';
import { pipelined, pipelinedInOrder, streamBatches } from './pipeline';

/** The engine's clock (UTC, microseconds): what `_tributary_synced_at` is compared with. */
async function engineNow(wh: Warehouse): Promise<string> {
  return (await wh.queryRows<{ t: string }>(`SELECT toString(now64(6, 'UTC')) AS t`))[0].t;
}

/** Batches a resumable full refresh loads with the staging table's merges paused (a part each). */
const UNMERGED_BATCHES = 300;

function batchToken(jobId: string, data: Buffer, rows: number): string {
  const lastRow = data.subarray(data.lastIndexOf(0x0a, data.length - 2) + 1);
  return `${jobId}:${rows}:${crypto.createHash('sha1').update(lastRow).digest('hex')}`;
}

export function createSyncActivities(deps: ActivityDeps) {
  const { catalog, warehouse } = deps;

  /** The run into this process's metrics, labelled by the source's prefix and the table's name. */
  async function observeJob(job: JobRow): Promise<void> {
    const [schema, source] = await Promise.all([getSchema(catalog.db, job.schema_id), getSource(catalog.db, job.source_id)]);
    if (schema && source) observeRun({ source: source.prefix, schema: schema.name }, job.status === 'Failed' ? 'Failed' : 'Completed', Number(job.rows_synced), job.started_at, job.finished_at);
  }

  /** A batch is in the warehouse (or handed to a streaming insert): count it, heartbeat the position it reached. */
  function batchLoaded(hb: Heartbeats, progress: SyncProgress, batch: Batch, jobId: string, table: string): void {
    progress.rows += batch.rows;
    progress.bytes += batch.data.length;
    progress.batches += 1;
    if (batch.cursor !== undefined) progress.cursor = batch.cursor;
    hb.beat(progress);
    deps.log.debug({ jobId, table, batch: progress.batches, rows: progress.rows }, 'batch loaded');
  }

  /**
   * Makes the earlier attempt's staging table `from` this attempt's `to`, by one RENAME: rows it had loaded stay and
   * so does its deduplication log (a batch written again by the resumed read is dropped by its token). False when
   * `from` is gone (dropped by a stop, or already taken over by an attempt that left no heartbeat): start over.
   */
  async function takeOverStaging(from: string, to: string): Promise<boolean> {
    if (from === to) return tableExists(warehouse, to);
    try {
      await renameTables(warehouse, [{ from, to }]);
      return true;
    } catch (err) {
      if (await tableExists(warehouse, from)) throw err;
      return false;
    }
  }

  /** A load heartbeats on a timer throughout (see Heartbeats); a refusal no retry can fix fails it at once. */
  function load<A extends unknown[], R>(run: (hb: Heartbeats, ...args: A) => Promise<R>): (...args: A) => Promise<R> {
    return async (...args) => {
      const hb = new Heartbeats(Context.current());
      try {
        return await run(hb, ...args);
      } catch (err) {
        rethrowForGood(err);
      } finally {
        hb.stop();
      }
    };
  }

  return {
    async beginJob(schemaId: string): Promise<JobStarted> {
      // Only the schema row: the source's sealed config is not needed to open a job.
      const schema = await getSchema(catalog.db, schemaId);
      if (!schema) throw ApplicationFailure.nonRetryable(`Schema ${schemaId} no longer exists`, 'NotFound');
      const execution = Context.current().info.workflowExecution;
      if (!execution) throw new Error('beginJob runs only inside a workflow');
      const { workflowId, runId } = execution;
      const job = await startJob(catalog.db, { schemaId, sourceId: schema.source_id, workflowId, runId });
      await markSchemaRunning(catalog.db, schemaId);
      return { jobId: job.id, version: String(job.sync_version), syncType: schema.sync_type ?? 'full_refresh', heartbeatTimeoutMs: deps.heartbeatTimeoutMs };
    },

    /**
     * Streams the whole table into a fresh staging table of this attempt's own; the live table is untouched until
     * publish. A read that reports its position (Stripe's last id) is resumed by a retried attempt, which first
     * takes the earlier attempt's staging table over by renaming it to its own name; one that does not (Postgres
     * COPY) starts over into a new table. Either way an earlier attempt still alive unseen (its heartbeats lost)
     * can no longer reach the table this attempt loads: the name it writes to is gone.
     */
    loadFullRefresh: load(async (hb, schemaId: string, jobId: string, version: string): Promise<LoadResult> => {
      const ctx = Context.current();
      const sc = await loadSchemaContext(deps, schemaId);
      // Files are copied by the engine itself, not read through the connector.
      if (sc.connector.files) return importAllFiles(deps, hb, sc, jobId, version);
      const { schema, connector, config, targetTable } = sc;
      const staging = stagingTableName(targetTable, jobId, ctx.info.attempt);
      // The live table's names, so a table synced under the old naming rule is swapped for one named alike.
      const [described, live] = await Promise.all([connector.describe(config, schema.name), tableColumns(warehouse, targetTable)]);
      const columns = keepExistingColumnNames(described, live.map((c) => c.name));
      const primaryKey = warehouseKey(schema.primary_key_columns, columns);

      const resumed = ctx.info.heartbeatDetails as SyncProgress | undefined;
      let progress: SyncProgress = resumed?.cursor ? resumed : { phase: 'loading', rows: 0, bytes: 0, batches: 0 };
      if (progress.cursor && !(await takeOverStaging(progress.staging ?? stagingPrefix(targetTable, jobId), staging))) {
        progress = { phase: 'loading', rows: 0, bytes: 0, batches: 0 }; // the rows to resume on are gone: start over
      }
      progress.staging = staging;
      // What earlier attempts left (a load that started over, one that died): never this attempt's, nor a later one's.
      await dropEarlierAttempts(warehouse, targetTable, jobId, ctx.info.attempt);
      if (!progress.cursor) {
        await dropTable(warehouse, staging); // a retried attempt with nothing to resume from starts the load over
        // Keyed tables are ReplacingMergeTree so `FINAL` reads the same for every sync type; a table
        // without a key can't be deduplicated safely and stays a plain MergeTree.
        const engine = primaryKey.length ? ('ReplacingMergeTree' as const) : ('MergeTree' as const);
        await warehouse.command(createTableSql(warehouse.database, staging, columns, { kind: engine, orderBy: primaryKey }, { cluster: warehouse.cluster }));
      }
      hb.beat(progress);
      const batches = connector.read(config, {
        table: schema.name, mode: 'full_refresh', columns, version: BigInt(version), batchBytes: deps.batchBytes, cursor: progress.cursor,
        heartbeat: () => hb.beat(progress),
      });
      const loaded = (batch: Batch) => batchLoaded(hb, progress, batch, jobId, targetTable);
      try {
        if (connector.fullRefreshResumes) {
          // Batch by batch, each durable — and every batch before it — before the position after it is
          // heartbeated. Two are inserted at once (insertsInFlight): one insert at a time left the engine waiting
          // on the read and the read on the engine (1M Pendo visitors, paired runs: median ~42k rows/s, ~50k with
          // two; BENCHMARKS.md). The staging table's parts are merged once, after the last batch: merging them
          // while the load runs cost the engine ~40 % more CPU on Pendo visitors (BENCHMARKS.md), CPU the read
          // needs. Past UNMERGED_BATCHES parts merging resumes, long before ClickHouse would slow inserts down for
          // too many parts (parts_to_delay_insert).
          const merges = await warehouse.pauseMerges(staging);
          let inserted = 0;
          await pipelinedInOrder(
            batches,
            async (batch) => {
              // A terminated or cancelled run learns it at a heartbeat: stop before writing any more.
              ctx.cancellationSignal.throwIfAborted();
              // A resumed attempt may write its first batch again: the token lets ClickHouse drop the repeat.
              await warehouse.insertBytes(staging, batch.columns, batch.data, {
                format: batch.format,
                settings: { insert_deduplication_token: batchToken(jobId, batch.data, batch.rows) },
              });
            },
            async (batch) => {
              loaded(batch);
              if (++inserted === UNMERGED_BATCHES) await merges.resume();
            },
            deps.insertsInFlight ?? 2,
          ).finally(() => merges.resume());
        } else {
          // One insert fed as the source is read: the engine parses while Postgres renders (a retry starts over).
          await streamBatches(warehouse, staging, batches, (batch) => {
            ctx.cancellationSignal.throwIfAborted();
            loaded(batch);
          });
        }
      } catch (err) {
        if (ctx.cancellationSignal.aborted) await dropTable(warehouse, staging);
        throw err;
      }
      deps.log.info({ schemaId, jobId, table: targetTable, rows: progress.rows, bytes: progress.bytes }, 'table loaded');
      return { stagingTable: staging, rows: progress.rows };
    }),

    /**
     * Incremental and append: rows at or past the cursor, straight into the live table, batch by batch.
     * Each batch's cursor is heartbeated once ClickHouse has the batch, so a retried attempt resumes
     * there; the catalog's cursor moves only when the run completes (completeJob). Webhook tables refresh
     * the same way, in place: webhooks write into the live table meanwhile, and versions keep the newest state.
     */
    loadIncremental: load(async (hb, schemaId: string, jobId: string, version: string): Promise<IncrementalResult> => {
      const ctx = Context.current();
      const sc = await loadSchemaContext(deps, schemaId);
      // A files table's append is by new files (and rewritten ones), with no cursor column.
      if (sc.connector.files && sc.schema.sync_type === 'append') return importNewFiles(deps, hb, sc, jobId, version, () => engineNow(warehouse));
      const { schema, connector, config, targetTable } = sc;
      const mode = schema.sync_type as 'incremental' | 'append' | 'webhook';
      const cursorField = schema.incremental_field ?? undefined;
      if (!cursorField && mode !== 'webhook') throw ApplicationFailure.nonRetryable(`Schema "${schema.name}" has no incremental_field`, 'BadConfig');
      // The source's columns and the warehouse table's, side by side: two servers, no reason to wait in turn.
      const [described, existing] = await Promise.all([connector.describe(config, schema.name), tableColumns(warehouse, targetTable)]);
      const columns = keepExistingColumnNames(described, existing.map((c) => c.name));
      const primaryKey = warehouseKey(schema.primary_key_columns, columns);
      let evolution: string[] = [];
      if (!existing.length) {
        const engine: TableEngine = mode === 'append' ? { kind: 'MergeTree', orderBy: primaryKey } : { kind: 'ReplacingMergeTree', orderBy: primaryKey };
        await warehouse.command(createTableSql(warehouse.database, targetTable, columns, engine, { cluster: warehouse.cluster }));
      } else {
        try {
          evolution = evolutionWarnings(await evolveTable(warehouse, targetTable, columns, existing));
        } catch (err) {
          if (err instanceof IncompatibleSchemaChange) throw ApplicationFailure.nonRetryable(err.message, 'IncompatibleSchemaChange');
          throw err;
        }
      }

      const resumed = ctx.info.heartbeatDetails as IncrementalProgress | undefined;
      const progress: IncrementalProgress = resumed ?? {
        phase: 'loading', rows: 0, bytes: 0, batches: 0, cursor: (schema.sync_cursor as string | null) ?? undefined, warnings: [],
      };
      // Before the first row: the rows synced after this are the run's (recordIncrementalChanges).
      progress.changesFrom ??= await engineNow(warehouse);
      hb.beat(progress);
      const batches = connector.read(config, {
        table: schema.name, mode, columns, version: BigInt(version), cursorField, cursor: progress.cursor, resumeAfter: progress.resumeAfter,
        orderKey: schema.primary_key_columns ?? undefined, batchBytes: deps.batchBytes, heartbeat: () => hb.beat(progress),
      });
      await pipelined(batches, async (batch) => {
        ctx.cancellationSignal.throwIfAborted();
        // A retry re-reads from the last heartbeat the server recorded, so it may insert batches again:
        // the token (job, where the batch ends, its size) lets ClickHouse drop the repeat.
        await warehouse.insertBytes(targetTable, batch.columns, batch.data, {
          format: batch.format,
          settings: { insert_deduplication_token: batchToken(jobId, batch.data, batch.rows) },
        });
        if (batch.tombstoneBefore !== undefined) {
          await markMissingDeleted(warehouse, targetTable, batch.tombstoneBefore);
          progress.refreshVersion = batch.tombstoneBefore.toString();
        }
        if (batch.warning) progress.warnings = [...(progress.warnings ?? []), batch.warning];
        // The exact place after this batch (inside a run of equal cursor values): where a retry resumes.
        progress.resumeAfter = batch.resumeAfter;
        batchLoaded(hb, progress, batch, jobId, targetTable);
      });
      // Only a nullable cursor can skip rows: don't scan the table for NULLs a NOT NULL column can't hold.
      const cursorNullable = columns.find((c) => c.sourceName === cursorField)?.nullable ?? true;
      const skipped = cursorField && cursorNullable ? ((await connector.countNullCursor?.(config, schema.name, cursorField)) ?? 0) : 0;
      const warnings = [
        ...evolution,
        ...(progress.warnings ?? []),
        ...(skipped ? [`${skipped} rows were skipped because their cursor "${cursorField}" is NULL`] : []),
      ];
      return { rows: progress.rows, cursor: progress.cursor, warnings, changesFrom: progress.changesFrom, refreshVersion: progress.refreshVersion };
    }),

    /**
     * An incremental, append or webhook-refresh run's changes into the change log, once its rows are all in: the
     * rows synced into the live table since the schema's changes were last recorded (a failed run's rows too), each
     * against the key's row before it (warehouse/change-diff.ts): incremental upserts are inserts or updates
     * (unchanged re-reads record nothing), a refresh's deletions deletes; append rows are inserts, and so are a
     * keyless table's. A webhook table's refresh records only its own rows (webhooks record theirs).
     */
    recordIncrementalChanges: load(async (_hb, schemaId: string, loaded: Pick<IncrementalResult, 'changesFrom' | 'refreshVersion'>): Promise<{ changes: number }> => {
      const { schema, source, targetTable } = await loadSchemaContext(deps, schemaId);
      const columns = await tableColumns(warehouse, targetTable);
      if (!columns.length) return { changes: 0 };
      const to = await engineNow(warehouse);
      const from = (await changesRecordedTo(catalog.db, schemaId)) ?? loaded.changesFrom;
      const key = await sortingKey(warehouse, targetTable);
      const window = [
        ...(from ? [`_tributary_synced_at > toDateTime64(${sqlString(from)}, 6, 'UTC')`] : []),
        `_tributary_synced_at <= toDateTime64(${sqlString(to)}, 6, 'UTC')`,
        ...(schema.sync_type === 'webhook' && loaded.refreshVersion ? [`_tributary_version = ${BigInt(loaded.refreshVersion).toString()}`] : []),
      ].join(' AND ');
      const sql =
        schema.sync_type === 'append' || !key.length
          ? appendChangesSql(warehouse.database, targetTable, columns, key, window)
          : writtenChangesSql({ database: warehouse.database, table: targetTable, columns, key, written: { where: window } });
      const changes = await recordChanges({ catalog, warehouse }, { sourceId: source.id, table: targetTable, sql });
      await setChangesRecordedTo(catalog.db, schemaId, to);
      deps.log.debug({ schemaId, table: targetTable, changes }, 'run changes recorded');
      return { changes };
    }),

    /**
     * A full refresh's publication with the change log: the loaded table is swapped in at once (readers see the
     * new rows as soon as they are loaded), and the table it replaces stays under the staging name for
     * recordRefreshChanges. A retry after the swap finds it done (warehouse/tables.ts swapInKeepingPrevious).
     */
    async publishRefresh(schemaId: string, jobId: string, stagingTable: string): Promise<{ previous: boolean }> {
      const { targetTable } = await loadSchemaContext(deps, schemaId);
      const swapped = await swapInKeepingPrevious(warehouse, stagingTable, targetTable, `tributary_job:${jobId}`);
      await testHold(deps, swapped.previous ? 'refresh swapped in over a previous table' : 'refresh swapped in as a first load');
      return swapped;
    },

    /**
     * A full refresh's changes, after publishRefresh: the new live table against the one it replaced (kept under
     * the staging name, `previous`), by primary key, in the engine (warehouse/change-diff.ts); then the replaced
     * table is dropped. A first load is all inserts. A table without a primary key records nothing, and the
     * job's warnings say so. The replaced table goes only once the changes are in: a retry finds it missing only
     * when an attempt before it recorded them.
     */
    recordRefreshChanges: load(async (hb, schemaId: string, stagingTable: string, version: string, previous: boolean): Promise<{ changes: number; warnings: string[] }> => {
      const { source, connector, targetTable } = await loadSchemaContext(deps, schemaId);
      await testHold(deps, previous ? 'refresh published over a previous table' : 'refresh published as a first load');
      if (previous && !(await tableExists(warehouse, stagingTable))) return { changes: 0, warnings: [] };
      const key = await sortingKey(warehouse, targetTable);
      if (!key.length) {
        await dropTable(warehouse, stagingTable);
        return { changes: 0, warnings: [`${targetTable} has no primary key: the full refresh recorded no changes in the change log (set primary_key_columns to record them)`] };
      }
      const [freshColumns, oldColumns] = await Promise.all([tableColumns(warehouse, targetTable), previous ? tableColumns(warehouse, stagingTable) : []]);
      const diff = { database: warehouse.database, fresh: targetTable, old: stagingTable, key, freshColumns, oldColumns, version: BigInt(version), diffTable: diffTableName(stagingTable), freshFinal: !!connector.fullRefreshResumes };
      hb.beat({ phase: 'changes', table: targetTable });
      // The new table's parts are merged after its changes are read, not while: the read merges them itself (FINAL),
      // and a background merge of the same parts beside it took the cores it needs (a 1M-visitor Pendo load: ~1.6x
      // longer to record; BENCHMARKS.md). A merge the swap let start is cancelled by the pause.
      const merges = await warehouse.pauseMerges(targetTable);
      let changes: number;
      try {
        if (!previous) {
          changes = await recordChanges({ catalog, warehouse }, { sourceId: source.id, table: targetTable, sql: firstLoadChangesSql(diff) });
        } else {
          await dropDiffTable(warehouse, diff.diffTable);
          try {
            await warehouse.command(refreshDiffKeysSql(diff));
            changes = await recordChanges({ catalog, warehouse }, { sourceId: source.id, table: targetTable, sql: refreshChangesSql(diff) });
          } finally {
            await dropDiffTable(warehouse, diff.diffTable);
          }
        }
      } finally {
        await merges.resume();
      }
      // The live table is replaced: what incremental recording would look at next starts after it.
      await setChangesRecordedTo(catalog.db, schemaId, await engineNow(warehouse));
      await dropTable(warehouse, stagingTable);
      deps.log.debug({ schemaId, table: targetTable, changes }, 'full refresh changes recorded');
      return { changes, warnings: [] };
    }),

    /** EXCHANGE TABLES: readers see the old table or the new one, never a half-loaded one. */
    async publishTable(schemaId: string, stagingTable: string): Promise<void> {
      const { targetTable } = await loadSchemaContext(deps, schemaId);
      await swapIn(warehouse, stagingTable, targetTable);
    },

    /** The run's end: the cursor reached is saved only now, after every batch is in the warehouse. */
    async completeJob(schemaId: string, jobId: string, rows: number, cursor?: string, warnings: string[] = []): Promise<void> {
      const job = await finishJob(catalog.db, jobId, { status: 'Completed', rows, warnings });
      await markSchemaCompleted(catalog.db, schemaId, rows, cursor);
      if (job) await observeJob(job);
      if (job) await alertOnRunEnd(deps, { kind: 'sync_failed', severity: 'critical', subject: { source_id: job.source_id, schema_id: schemaId }, message: '' }, false);
    },

    async failJob(schemaId: string, jobId: string, error: string): Promise<void> {
      const job = await finishJob(catalog.db, jobId, { status: 'Failed', rows: 0, error });
      await markSchemaFailed(catalog.db, schemaId, error);
      if (job) await observeJob(job);
      const ctx = await loadSchemaContext(deps, schemaId).catch(() => undefined);
      if (ctx) {
        const subject = { source_id: ctx.source.id, source_name: ctx.source.prefix, schema_id: schemaId, schema_name: ctx.schema.name };
        await alertOnRunEnd(deps, { kind: 'sync_failed', severity: 'critical', subject, message: `sync of ${ctx.source.prefix}.${ctx.schema.name} failed: ${error}` }, true);
        await dropTablesStartingWith(warehouse, stagingPrefix(ctx.targetTable, jobId)); // every attempt's
      }
    },
  };
}
