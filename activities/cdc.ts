import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Catalog } from '../catalog';
import { unsealConfig } from '../catalog';
import {
  clearSnapshots,
  ensureCdcMirror,
  getCdcMirror,
  markSnapshotDone,
  recordStreamedChanges,
  resetCdcCheckpoint,
  saveCdcCheckpoint,
  saveCdcLag,
  setCdcStatus,
} from '../catalog/cdc';
import { finishJob, startJob } from '../catalog/jobs';
import { listSchemas, markSchemaFailed, markSchemaRunning, type SchemaRow } from '../catalog/schemas';
import { getSource, type SourceRow } from '../catalog/sources';
import { frequencyMs, type SyncFrequency } from '../common/frequencies';
import type { CdcPlan, CdcStreamProgress, CdcStreamResult } from '../common/types';
import { cdcPublicationName, cdcSlotName } from '../connectors/postgres/cdc-names';
import { bigIntToLsn, lsnToBigInt } from '../connectors/postgres/cdc-stream';
import { connectorFor } from '../connectors/registry';
import type { CdcCapability, Connector } from '../connectors/types';
import { SourceError } from '../connectors/types';
import { keepExistingColumnNames } from '../warehouse/columns';
import { IncompatibleSchemaChange, tableColumns } from '../warehouse/evolution';
import { dropSchemaTables } from '../warehouse/table-admin';
import { createTableSql, dropTable, swapIn, warehouseTableName } from '../warehouse/tables';
import { CdcSink } from './cdc-sink';
import { recordChanges } from './change-recorder';
import { dropEarlierAttempts, Heartbeats, rethrowForGood, stagingTableName, type ActivityDeps } from './context';
import { streamBatches } from './pipeline';

const envNumber = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

/** Flush a CDC batch at this many changes, or when its oldest change has waited this long (see bench:cdc). */
export const CDC_MAX_CHANGES = () => envNumber('TRIBUTARY_CDC_BATCH_CHANGES', 20_000);
export const CDC_MAX_WAIT_MS = () => envNumber('TRIBUTARY_CDC_FLUSH_MS', 500);

/** How long a streamed change may wait for its batch: the flush interval, capped by the CDC tables' sync frequency. */
export function cdcFlushWaitMs(schemas: Pick<SchemaRow, 'sync_frequency'>[], flushMs = CDC_MAX_WAIT_MS()): number {
  const caps = schemas.map((s) => frequencyMs(s.sync_frequency as SyncFrequency)).filter((ms): ms is number => ms !== undefined);
  return Math.min(flushMs, ...caps);
}
/** How long one streaming activity runs before handing back to the workflow (which may continue-as-new). */
const CDC_STREAM_MS = () => envNumber('TRIBUTARY_CDC_STREAM_MS', 15 * 60_000);
const LAG_CHECK_MS = () => envNumber('TRIBUTARY_CDC_LAG_CHECK_MS', 60_000);

interface CdcContext {
  source: SourceRow;
  connector: Connector<Record<string, unknown>>;
  cdc: CdcCapability<Record<string, unknown>>;
  config: Record<string, unknown>;
  /** Enabled CDC schemas. */
  schemas: SchemaRow[];
}

async function loadCdcContext(catalog: Catalog, sourceId: string): Promise<CdcContext> {
  const source = await getSource(catalog.db, sourceId);
  if (!source) throw ApplicationFailure.nonRetryable(`Source ${sourceId} no longer exists`, 'NotFound');
  const connector = connectorFor(source.source_type);
  if (!connector?.cdc) throw ApplicationFailure.nonRetryable(`${source.source_type} sources do not support CDC`, 'NotSupported');
  const config = connector.configSchema.parse(unsealConfig(catalog.secrets, source));
  const schemas = (await listSchemas(catalog.db, sourceId)).filter((s) => s.should_sync && s.sync_type === 'cdc');
  return { source, connector, cdc: connector.cdc, config, schemas };
}

/** Errors no retry can fix: the workflow puts the source in Error until the user acts. */
function fatal(err: unknown): never {
  const e = err as Error;
  if (e?.name === 'SlotLostError') throw ApplicationFailure.nonRetryable(e.message, 'SlotLost');
  if (e instanceof IncompatibleSchemaChange) throw ApplicationFailure.nonRetryable(e.message, 'IncompatibleSchemaChange');
  rethrowForGood(err);
}

export function createCdcActivities(deps: ActivityDeps) {
  const { catalog, warehouse } = deps;

  return {
    /**
     * Makes the source match the catalog: the publication covers the enabled CDC tables and the slot
     * exists. A slot that vanished after streaming began means changes were lost: that is an error
     * only a resync clears. Returns the tables that need a snapshot.
     */
    async prepareCdc(sourceId: string): Promise<CdcPlan> {
      const ctx = await loadCdcContext(catalog, sourceId);
      const mirror = await ensureCdcMirror(catalog.db, sourceId, cdcSlotName(sourceId), cdcPublicationName(sourceId));
      // A table that left CDC needs a fresh snapshot if it ever comes back.
      const left = (await listSchemas(catalog.db, sourceId)).filter((s) => s.cdc_snapshot_at && !ctx.schemas.some((c) => c.id === s.id));
      await clearSnapshots(catalog.db, left.map((s) => s.id));
      if (!ctx.schemas.length) return { tables: [], snapshot: [] };
      let slotCreated: boolean;
      try {
        ({ slotCreated } = await ctx.cdc.prepare(ctx.config, sourceId, ctx.schemas.map((s) => s.name)));
      } catch (err) {
        fatal(err);
      }
      if (slotCreated && mirror.checkpoint_lsn) {
        throw ApplicationFailure.nonRetryable(
          `replication slot ${mirror.slot_name} disappeared after streaming had begun (dropped at the source?): changes since ${mirror.checkpoint_lsn} are lost; resync the source`,
          'SlotLost',
        );
      }
      if (slotCreated) await clearSnapshots(catalog.db, ctx.schemas.map((s) => s.id));
      const snapshot = slotCreated ? ctx.schemas : ctx.schemas.filter((s) => !s.cdc_snapshot_at);
      return { tables: ctx.schemas.map((s) => s.name), snapshot: snapshot.map((s) => ({ schemaId: s.id, name: s.name })) };
    },

    /**
     * Loads a table's current rows with `_tributary_version` 0 into a fresh table and swaps it in: any
     * change streamed afterwards (version = its LSN) wins over the snapshot row, so a snapshot taken
     * after the slot was created converges whatever it overlaps.
     */
    async snapshotCdcTable(sourceId: string, schemaId: string, runKey: string): Promise<{ rows: number }> {
      const act = Context.current();
      const ctx = await loadCdcContext(catalog, sourceId);
      const schema = ctx.schemas.find((s) => s.id === schemaId);
      if (!schema) return { rows: 0 }; // no longer a CDC table
      const { workflowId, runId } = act.info.workflowExecution ?? { workflowId: `cdc-${sourceId}`, runId: runKey };
      const job = await startJob(catalog.db, { schemaId, sourceId, workflowId, runId: `${runId}/${runKey}` });
      await markSchemaRunning(catalog.db, schemaId);
      const target = warehouseTableName(ctx.source.prefix, schema.name);
      const staging = stagingTableName(target, job.id, act.info.attempt);
      // Heartbeats on a timer too: the source's first row, or the swap queued in the engine, can take long.
      const hb = new Heartbeats(act);
      try {
        const [described, live] = await Promise.all([ctx.connector.describe(ctx.config, schema.name), tableColumns(warehouse, target)]);
        const columns = keepExistingColumnNames(described, live.map((c) => c.name));
        const key = (schema.primary_key_columns ?? []).flatMap((k) => columns.filter((c) => c.sourceName === k).map((c) => c.name));
        if (!key.length) throw ApplicationFailure.nonRetryable(`CDC table "${schema.name}" needs primary_key_columns`, 'Config');
        await dropEarlierAttempts(warehouse, target, job.id, act.info.attempt);
        await dropTable(warehouse, staging);
        await warehouse.command(createTableSql(warehouse.database, staging, columns, { kind: 'ReplacingMergeTree', orderBy: key }, { cluster: warehouse.cluster }));
        const progress = { phase: 'snapshot', table: target, rows: 0 };
        hb.beat(progress);
        const batches = ctx.connector.read(ctx.config, { table: schema.name, mode: 'full_refresh', columns, version: 0n, batchBytes: deps.batchBytes });
        // The batch path's streaming load: one insert fed as the COPY is read.
        await streamBatches(warehouse, staging, batches, (batch) => {
          act.cancellationSignal.throwIfAborted();
          progress.rows += batch.rows;
          hb.beat(progress);
        });
        await swapIn(warehouse, staging, target);
        await finishJob(catalog.db, job.id, { status: 'Completed', rows: progress.rows });
        await markSnapshotDone(catalog.db, schemaId, progress.rows);
        deps.log.info({ sourceId, table: target, rows: progress.rows }, 'CDC snapshot loaded');
        return { rows: progress.rows };
      } catch (err) {
        await dropTable(warehouse, staging).catch(() => undefined);
        await finishJob(catalog.db, job.id, { status: 'Failed', rows: 0, error: (err as Error).message });
        await markSchemaFailed(catalog.db, schemaId, (err as Error).message);
        fatal(err);
      } finally {
        hb.stop();
      }
    },

    /**
     * Streams the slot into the warehouse until cancelled (pause, table changes, resync) or until its
     * time is up. Heartbeats carry the checkpoint: the commit LSN whose changes are all durable.
     */
    async streamCdc(sourceId: string): Promise<CdcStreamResult> {
      const act = Context.current();
      const ctx = await loadCdcContext(catalog, sourceId);
      const mirror = await getCdcMirror(catalog.db, sourceId);
      const fromHeartbeat = (act.info.heartbeatDetails as CdcStreamProgress | undefined)?.checkpoint;
      const saved = [fromHeartbeat, mirror?.checkpoint_lsn].filter((x): x is string => !!x).map(lsnToBigInt);
      let checkpoint: bigint | null = saved.length ? saved.reduce((a, b) => (a > b ? a : b)) : null;
      const tables = new Map(
        ctx.schemas.map((s) => [s.name, { target: warehouseTableName(ctx.source.prefix, s.name), primaryKey: s.primary_key_columns ?? [] }]),
      );
      const progress: CdcStreamProgress = { checkpoint: checkpoint === null ? null : bigIntToLsn(checkpoint), changes: 0, lagBytes: null };
      const warnings: string[] = [];
      const heartbeat = () => act.heartbeat(progress);
      heartbeat();
      await setCdcStatus(catalog.db, sourceId, 'Streaming');

      let acknowledge: (lsn: bigint) => void = () => undefined;
      const sink = new CdcSink({
        warehouse,
        log: deps.log,
        tables,
        maxChanges: CDC_MAX_CHANGES(),
        maxWaitMs: cdcFlushWaitMs(ctx.schemas),
        // Rule 1: the warehouse has the changes → save the checkpoint → only then acknowledge the slot.
        async onDurable(lsn, perTable, commitAt) {
          const changes = [...perTable.values()].reduce((a, b) => a + b, 0);
          await saveCdcCheckpoint(catalog.db, sourceId, bigIntToLsn(lsn), changes, commitAt);
          if (perTable.size) await recordStreamedChanges(catalog.db, sourceId, perTable);
          checkpoint = lsn;
          progress.checkpoint = bigIntToLsn(lsn);
          progress.changes += changes;
          heartbeat();
          acknowledge(lsn);
          deps.log.debug({ sourceId, lsn: progress.checkpoint, changes }, 'CDC batch durable');
        },
        // Rule 5: an idle slot keeps moving, so it never holds WAL for other databases' traffic.
        async onIdle(lsn) {
          if (checkpoint !== null && lsn <= checkpoint) return acknowledge(checkpoint);
          await saveCdcCheckpoint(catalog.db, sourceId, bigIntToLsn(lsn), 0);
          checkpoint = lsn;
          progress.checkpoint = bigIntToLsn(lsn);
          acknowledge(lsn);
        },
        // The change log gets each batch's changes after the tables do, before the checkpoint passes them.
        recordChanges: (select) => recordChanges({ catalog, warehouse }, { ...select, sourceId }),
        warn(message) {
          if (!warnings.includes(message)) warnings.push(message);
          deps.log.warn({ sourceId }, message);
        },
      });

      let stream;
      try {
        stream = await ctx.cdc.stream(ctx.config, {
          sourceId,
          startLsn: checkpoint,
          primaryKey: (t) => tables.get(t)?.primaryKey,
          onEvent: async (event) => {
            if (event.type === 'keepalive' && event.mustReply && checkpoint !== null) acknowledge(checkpoint);
            await sink.handle(event);
          },
        });
      } catch (err) {
        sink.close();
        if (err instanceof SourceError && /does not exist/.test(err.message)) {
          throw ApplicationFailure.nonRetryable(`replication slot ${cdcSlotName(sourceId)} does not exist: ${err.message}; resync the source`, 'SlotLost');
        }
        fatal(err);
      }
      acknowledge = (lsn) => stream.acknowledge(lsn);
      deps.log.info({ sourceId, from: progress.checkpoint, tables: [...tables.keys()] }, 'CDC streaming');

      // On a timer too, beside the loop's own beats: handing back drains what is buffered, which can take long.
      const hb = new Heartbeats(act);
      hb.beat(progress);
      const until = Date.now() + CDC_STREAM_MS();
      let nextLagCheck = 0;
      let ended: 'rotate' | 'cancelled' = 'rotate';
      let streamError: unknown;
      stream.done.catch((err) => (streamError ??= err));
      try {
        for (;;) {
          if (streamError || sink.error) throw streamError ?? sink.error;
          if (act.cancellationSignal.aborted) {
            ended = 'cancelled';
            break;
          }
          if (Date.now() >= until) break;
          if (Date.now() >= nextLagCheck) {
            nextLagCheck = Date.now() + LAG_CHECK_MS();
            const slot = await ctx.cdc.slotStatus(ctx.config, sourceId).catch(() => undefined);
            if (slot?.walStatus === 'lost') fatal(Object.assign(new Error(`replication slot ${cdcSlotName(sourceId)} was invalidated (wal_status = lost); resync the source`), { name: 'SlotLostError' }));
            if (slot) {
              progress.lagBytes = slot.lagBytes;
              await saveCdcLag(catalog.db, sourceId, slot.lagBytes);
            }
          }
          heartbeat();
          await new Promise((r) => setTimeout(r, 250));
        }
        // Hand back cleanly: everything received is written and checkpointed before the slot is released.
        await stream.stop();
        await sink.drain();
      } catch (err) {
        await stream.stop().catch(() => undefined);
        fatal(err);
      } finally {
        sink.close();
        hb.stop();
      }
      deps.log.info({ sourceId, checkpoint: progress.checkpoint, changes: progress.changes, ended }, 'CDC stream handed back');
      if (ended === 'cancelled') act.cancellationSignal.throwIfAborted();
      return { checkpoint: progress.checkpoint, changes: progress.changes, warnings };
    },

    async setCdcState(sourceId: string, status: string, error: string | null): Promise<void> {
      await setCdcStatus(catalog.db, sourceId, status, error);
    },

    /**
     * Starts the mirror over: drops the slot and publication (changes since the checkpoint are
     * unrecoverable anyway), forgets the checkpoint, and drops the warehouse tables so the snapshots
     * that follow rebuild them from the source.
     */
    async resetCdc(sourceId: string): Promise<void> {
      const ctx = await loadCdcContext(catalog, sourceId);
      await ctx.connector.cleanup?.(ctx.config, { id: sourceId, prefix: ctx.source.prefix });
      await resetCdcCheckpoint(catalog.db, sourceId);
      const all = (await listSchemas(catalog.db, sourceId)).filter((s) => s.sync_type === 'cdc');
      await clearSnapshots(catalog.db, all.map((s) => s.id));
      for (const s of ctx.schemas) await dropSchemaTables(warehouse, warehouseTableName(ctx.source.prefix, s.name), { keepLive: false });
      await setCdcStatus(catalog.db, sourceId, 'Resyncing');
    },

    /** No CDC tables left: drop the slot (so it retains no WAL) and the publication. */
    async teardownCdc(sourceId: string): Promise<void> {
      const ctx = await loadCdcContext(catalog, sourceId);
      await ctx.connector.cleanup?.(ctx.config, { id: sourceId, prefix: ctx.source.prefix });
      await resetCdcCheckpoint(catalog.db, sourceId);
      const all = (await listSchemas(catalog.db, sourceId)).filter((s) => s.sync_type === 'cdc' || s.cdc_snapshot_at);
      await clearSnapshots(catalog.db, all.map((s) => s.id));
      await setCdcStatus(catalog.db, sourceId, 'Stopped');
    },
  };
}

export type CdcActivities = ReturnType<typeof createCdcActivities>;
