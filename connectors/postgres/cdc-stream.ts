import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { CdcEvent, CdcRelation, CdcStream } from '../types';
import { SourceError } from '../types';
import { tsvEscape, TSV_NULL } from '../../warehouse/tsv';
import { absentField, textConverter } from './cdc-values';
import { clientConfig } from './connection';
import type { PostgresConfig } from './config';
import type { MappedColumn } from './types';

/** `X/Y` (Postgres's LSN text) as a number, so LSNs compare and serve as `_tributary_version`. */
export function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export function bigIntToLsn(v: bigint): string {
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
}

const identity = (raw: string) => raw;

/**
 * pgoutput with every value kept as Postgres's text: the library would otherwise run pg's type
 * parsers (timestamps into Date, losing microseconds; json into objects, losing its exact text).
 * A relation's columns are patched as its message is parsed, before any change that uses them.
 * Counting parsed messages also tells the stream when nothing received is still waiting to be handled.
 */
class TextPgoutputPlugin extends PgoutputPlugin {
  received = 0;
  override parse(buffer: Buffer): Pgoutput.Message {
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') for (const c of msg.columns) c.parser = identity;
    this.received++;
    return msg;
  }
}

interface RelationState {
  relation: CdcRelation;
  /** For each pgoutput column: its index in `relation.columns`, or -1 (a column the warehouse does not know). */
  slots: number[];
  convert: ((text: string) => string)[];
  keyNames: string[];
}

export interface StreamOptions {
  slot: string;
  publication: string;
  /** Where to resume: the checkpoint (Postgres starts at the slot's confirmed position if that is later). */
  startLsn: bigint | null;
  /** The table's primary key (source column names): what decides that an update moved a row. */
  primaryKey(table: string): string[] | undefined;
  /** Maps a table's columns as they are now at the source (the connector's describe). */
  describe(table: string): Promise<MappedColumn[]>;
  /** Handles events in order; a returned promise holds the stream (backpressure). */
  onEvent(event: CdcEvent): void | Promise<void>;
}

/**
 * The replication connection: the batch session's settings, plus TRIBUTARY_CDC_WAL_SENDER_TIMEOUT_MS when set.
 * Postgres sends an idle stream a keepalive every half of wal_sender_timeout (60 s by default), and each one
 * lets an idle slot move on: a shorter timeout confirms an idle slot's position sooner.
 */
export function replicationClientConfig(config: PostgresConfig) {
  const base = clientConfig(config, 'tributary-cdc');
  const timeout = Number(process.env.TRIBUTARY_CDC_WAL_SENDER_TIMEOUT_MS);
  return Number.isInteger(timeout) && timeout > 0 ? { ...base, options: `${base.options} -c wal_sender_timeout=${timeout}` } : base;
}

/**
 * Streams a slot's changes as CdcEvents: values converted to the warehouse's text, one event per
 * row change, a commit event with the commit's end LSN (the only safe checkpoint), keepalives.
 */
export async function startStream(config: PostgresConfig, opts: StreamOptions): Promise<CdcStream> {
  const service = new LogicalReplicationService(
    replicationClientConfig(config),
    // Acknowledging is ours alone: only after the warehouse and the checkpoint have the changes.
    { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
  );
  const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [opts.publication] });
  const relations = new Map<number, RelationState>();
  let processed = 0;
  let failure: Error | undefined;
  let inTransaction = false;

  async function relationState(msg: Pgoutput.MessageRelation): Promise<RelationState> {
    let mapped = await opts.describe(msg.name);
    // A column added since describe ran is not there yet: look again once.
    if (msg.columns.some((c) => !mapped.some((m) => m.sourceName === c.name))) mapped = await opts.describe(msg.name);
    const columns: MappedColumn[] = [];
    const slots = msg.columns.map((c) => {
      const m = mapped.find((x) => x.sourceName === c.name);
      if (!m) return -1;
      columns.push(m);
      return columns.length - 1;
    });
    return {
      relation: { table: msg.name, columns, keyColumns: msg.keyColumns },
      slots,
      convert: columns.map(textConverter),
      // REPLICA IDENTITY FULL flags every column as key: the row's identity is its primary key.
      keyNames: opts.primaryKey(msg.name) ?? msg.keyColumns,
    };
  }

  /** One row image as escaped TabSeparated fields; `undefined` marks an unchanged TOASTed value. */
  function fields(state: RelationState, tuple: Record<string, unknown>, keyOnly: boolean): (string | undefined)[] {
    const cols = state.relation.columns;
    const out: (string | undefined)[] = new Array(cols.length);
    for (let i = 0; i < cols.length; i++) {
      const name = cols[i].sourceName;
      if (keyOnly && !state.keyNames.includes(name)) {
        out[i] = absentField(cols[i] as MappedColumn);
        continue;
      }
      const v = tuple[name];
      if (v === undefined) out[i] = undefined;
      else if (v === null) out[i] = TSV_NULL;
      else out[i] = tsvEscape(state.convert[i](typeof v === 'string' ? v : String(v)));
    }
    return out;
  }

  const keyChanged = (state: RelationState, oldKey: Record<string, unknown>, row: Record<string, unknown>) =>
    state.keyNames.some((k) => oldKey[k] !== undefined && oldKey[k] !== row[k]);

  async function handle(lsnText: string, msg: Pgoutput.Message): Promise<void> {
    const lsn = lsnToBigInt(lsnText);
    switch (msg.tag) {
      case 'begin':
        inTransaction = true;
        return;
      case 'relation': {
        const state = await relationState(msg);
        relations.set(msg.relationOid, state);
        return opts.onEvent({ type: 'relation', relation: state.relation });
      }
      case 'insert': {
        const state = relations.get(msg.relation.relationOid)!;
        return opts.onEvent({ type: 'change', op: 'insert', table: state.relation.table, lsn, fields: fields(state, msg.new, false) });
      }
      case 'update': {
        const state = relations.get(msg.relation.relationOid)!;
        const before = msg.key ?? msg.old;
        // A changed primary key moves the row: the old key is deleted, the new one inserted.
        if (before && keyChanged(state, before, msg.new)) {
          await opts.onEvent({ type: 'change', op: 'delete', table: state.relation.table, lsn, fields: fields(state, before, true), keyOnly: true });
          return opts.onEvent({ type: 'change', op: 'insert', table: state.relation.table, lsn, fields: fields(state, msg.new, false) });
        }
        return opts.onEvent({ type: 'change', op: 'update', table: state.relation.table, lsn, fields: fields(state, msg.new, false) });
      }
      case 'delete': {
        const state = relations.get(msg.relation.relationOid)!;
        const before = (msg.key ?? msg.old)!;
        return opts.onEvent({ type: 'change', op: 'delete', table: state.relation.table, lsn, fields: fields(state, before, !msg.old), keyOnly: !msg.old });
      }
      case 'truncate':
        return opts.onEvent({ type: 'truncate', tables: msg.relations.map((r) => r.name), lsn });
      case 'commit':
        inTransaction = false;
        // pgoutput's commit time is in microseconds since the Unix epoch (the parser adds Postgres's 2000 offset).
        return opts.onEvent({ type: 'commit', lsn: lsnToBigInt(msg.commitEndLsn!), commitTime: new Date(Number(BigInt(msg.commitTime as bigint) / 1000n)) });
      default:
        return;
    }
  }

  service.on('data', async (lsn: string, msg: Pgoutput.Message) => {
    try {
      // After a failure nothing more is handled: a skipped change must never be followed by a checkpoint.
      if (!failure) await handle(lsn, msg);
    } catch (err) {
      fail(err as Error);
    } finally {
      processed++;
    }
  });
  service.on('heartbeat', async (lsn: string, _ts: number, shouldRespond: boolean) => {
    // Nothing received is still unhandled and no transaction is open: the keepalive position is safe
    // to report as handled (the sink decides whether its own buffers are empty too).
    const idle = processed === plugin.received && !inTransaction;
    await opts.onEvent({ type: 'keepalive', lsn: lsnToBigInt(lsn), idle, mustReply: shouldRespond });
  });
  // The library reports a handler's error and would go on with the next message: stop instead.
  function fail(err: Error) {
    failure ??= err;
    void service.stop();
  }
  service.on('error', fail);

  const start = opts.startLsn !== null ? bigIntToLsn(opts.startLsn) : '0/0';
  const done = service.subscribe(plugin, opts.slot, start).then(
    () => {
      if (failure) throw failure;
    },
    (err: Error) => {
      // Stopping after a handler's failure ends the connection too: the failure is the cause to report.
      throw failure ?? new SourceError(`replication from slot "${opts.slot}" failed: ${err.message}`);
    },
  );
  // Surface start-up failures (slot missing or active elsewhere) to the caller at once.
  await Promise.race([new Promise<void>((resolve) => service.once('start', () => resolve())), done]);

  return {
    done,
    /**
     * Reports `lsn` as flushed. The library reports lsn + 1; a commit's end LSN can be exactly where
     * the next transaction's commit record starts, and reporting past it would skip that transaction
     * after a restart — so hand it lsn - 1.
     */
    acknowledge(lsn: bigint) {
      void service.acknowledge(bigIntToLsn(lsn > 0n ? lsn - 1n : 0n));
    },
    async stop() {
      await service.stop();
      await done.catch(() => undefined);
    },
  };
}
