import type { Catalog } from '../catalog';
import { unsealConfig } from '../catalog';
import { getSchema, type SchemaRow } from '../catalog/schemas';
import { getSource, type SourceRow } from '../catalog/sources';
import { connectorFor } from '../connectors/registry';
import { SourceRefused, type Connector } from '../connectors/types';
import type { Logger } from '../platform/logger';
import type { Warehouse } from '../warehouse/client';
import type { WarehouseColumn } from '../warehouse/columns';
import { engineErrorName, permanentEngineError } from '../warehouse/errors';
import { tablesStartingWith } from '../warehouse/table-admin';
import { dropTable, warehouseTableName } from '../warehouse/tables';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, Context as ActivityContext, type Context } from '@temporalio/activity';

/** What activities are built from: the stores they read and write. */
export interface ActivityDeps {
  catalog: Catalog;
  warehouse: Warehouse;
  log: Logger;
  /** Size of the byte batches a read is cut into (default: the connector's). */
  batchBytes?: number;
  /** Batches of a resumable full refresh inserted at once (default 2; platform/config.ts). */
  insertsInFlight?: number;
  /** The heartbeat timeout sync runs give their load activity (default 30 s); beginJob hands it to the workflow. */
  heartbeatTimeoutMs?: number;
  /** Delivery to destinations (activities/deliver.ts); defaults when absent. */
  delivery?: Partial<DeliverySettings>;
}

export interface DeliverySettings {
  /** A change batch left open this long by a writer that died is read past (TRIBUTARY_CHANGE_BATCH_LEASE_MS). */
  batchLeaseMs: number;
  /** TRIBUTARY_DESTINATION_COOLDOWN_MS */
  cooldownMs: number;
  /** TRIBUTARY_DESTINATION_RETRY_PAUSE_MS */
  retryPauseMs: number;
}

export interface SchemaContext {
  schema: SchemaRow;
  source: SourceRow;
  connector: Connector<Record<string, unknown>>;
  /** Decrypted and validated connection config: lives only inside the activity. */
  config: Record<string, unknown>;
  targetTable: string;
}

/** Loads a schema with its source and connector; a schema deleted meanwhile fails the run for good. */
export async function loadSchemaContext(deps: ActivityDeps, schemaId: string): Promise<SchemaContext> {
  const schema = await getSchema(deps.catalog.db, schemaId);
  if (!schema) throw ApplicationFailure.nonRetryable(`Schema ${schemaId} no longer exists`, 'NotFound');
  const source = await getSource(deps.catalog.db, schema.source_id);
  if (!source) throw ApplicationFailure.nonRetryable(`Source ${schema.source_id} no longer exists`, 'NotFound');
  const connector = connectorFor(source.source_type);
  if (!connector) throw ApplicationFailure.nonRetryable(`Unknown source type ${source.source_type}`, 'NotFound');
  const config = connector.configSchema.parse(unsealConfig(deps.catalog.secrets, source));
  return { schema, source, connector, config, targetTable: warehouseTableName(source.prefix, schema.name) };
}

/**
 * `<table>__loading_<job>`: what every staging table of one job's attempts starts with — what failJob, a stopped
 * run's sweep (sweepStaging) and dropSchemaTables drop by. (Before staging tables were per attempt this was the
 * staging table's whole name; a run of that version still finds its table under it.)
 */
export const stagingPrefix = (target: string, jobId: string) => `${target}__loading_${jobId.replace(/-/g, '').slice(0, 12)}`;

/**
 * One activity attempt's staging table, `<table>__loading_<job>_<attempt>`. Per attempt, not per job: a retried
 * attempt can run while the one before it is still alive unseen (its heartbeats lost, its process not dead), and
 * that one must never write into, or drop, the table the retry loads and publishes.
 */
export const stagingTableName = (target: string, jobId: string, attempt: number) => `${stagingPrefix(target, jobId)}_${attempt}`;

/**
 * Drops the staging tables earlier attempts of the job left (one that started over, or died), never this attempt's
 * or a later one's: a zombie attempt running this never touches its successor's table.
 */
export async function dropEarlierAttempts(wh: Warehouse, target: string, jobId: string, attempt: number): Promise<void> {
  const prefix = stagingPrefix(target, jobId);
  for (const name of await tablesStartingWith(wh, prefix)) {
    const m = /^_(\d+)$/.exec(name.slice(prefix.length));
    // The job's table of the per-job naming counts as earlier; the diff scratch tables (`…__changes`) are not loads'.
    const earlier = name === prefix || (m !== null && Number(m[1]) < attempt);
    if (earlier) await dropTable(wh, name);
  }
}

/** The schema's primary-key columns (source names) as warehouse column names. */
export function warehouseKey(keys: string[] | null, columns: WarehouseColumn[]): string[] {
  return (keys ?? []).flatMap((k) => columns.filter((c) => c.sourceName === k).map((c) => c.name));
}

/**
 * Rethrows `err`, as a non-retryable failure when no retry can fix it (the warehouse refuses the statement as it
 * stands, the source refuses the credential): the job or mirror then reaches Error at once, saying why, instead of
 * retrying the same refusal.
 */
export function rethrowForGood(err: unknown): never {
  if (err instanceof SourceRefused) throw ApplicationFailure.nonRetryable(err.message, 'SourceRefused');
  const engine = permanentEngineError(err);
  if (engine) throw ApplicationFailure.nonRetryable(`the warehouse refused it (${engineErrorName(engine.code)}): ${(err as Error).message}`, 'WarehouseRejected');
  throw err;
}

/**
 * Heartbeats on a timer for as long as an activity runs, with the latest details it was given: a source or engine
 * call that takes long before it answers (Postgres sorting before the first row, a full-scan count, a statement
 * queued behind others in the engine) must not look like a dead worker. The timer beats a third of the heartbeat
 * timeout apart; the SDK throttles what reaches the server anyway. Until the activity says where it is, the
 * previous attempt's details are repeated, so a slow start never erases the position a retry resumes from.
 */
export class Heartbeats {
  private details: unknown;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly ctx: Context) {
    this.details = ctx.info.heartbeatDetails;
    const timeoutMs = ctx.info.heartbeatTimeoutMs || 30_000;
    this.timer = setInterval(() => ctx.heartbeat(this.details), Math.max(100, Math.floor(timeoutMs / 3)));
  }

  /** Records the activity's progress (an object it may keep updating) and heartbeats it now. */
  beat(details: unknown): void {
    this.details = details;
    this.ctx.heartbeat(details);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * A deterministic crash point for the kill tests: with TRIBUTARY_TEST_HOLD_AT=<step>[,<step>…], the step logs
 * and waits (heartbeating) until the process is killed — once per data dir (a marker file), so the restarted
 * worker goes on. Unset in production: a no-op.
 */
export async function testHold(deps: ActivityDeps, step: string): Promise<void> {
  if (!(process.env.TRIBUTARY_TEST_HOLD_AT ?? '').split(',').includes(step)) return;
  const marker = path.join(process.env.TRIBUTARY_DATA_DIR ?? os.tmpdir(), `test-hold-${step.replace(/\W+/g, '-')}`);
  if (fs.existsSync(marker)) return;
  fs.writeFileSync(marker, '');
  deps.log.warn({ holdAt: step }, 'test hold: waiting here until the process is killed');
  for (;;) {
    ActivityContext.current().heartbeat();
    await new Promise((r) => setTimeout(r, 500));
  }
}
