import { SourceError } from '../types';
import { cdcPublicationName, cdcSlotName } from './cdc-names';
import { qualified, withConnection } from './connection';
import type { PostgresConfig } from './config';

/** The source's replication slot has been dropped or invalidated: its changes are gone, only a resync recovers. */
export class SlotLostError extends SourceError {
  constructor(message: string) {
    super(message);
    this.name = 'SlotLostError';
  }
}

export interface SlotStatus {
  exists: boolean;
  /** Bytes of WAL the slot holds back (pg_wal_lsn_diff of the current WAL position and confirmed_flush_lsn). */
  lagBytes: number | null;
  /** pg_replication_slots.wal_status: reserved, extended, unreserved or lost. */
  walStatus: string | null;
  active: boolean;
}

export async function slotStatus(config: PostgresConfig, sourceId: string): Promise<SlotStatus> {
  return withConnection(config, async (client) => {
    const r = await client.query<{ lag: string | null; wal_status: string | null; active: boolean }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag, wal_status, active
         FROM pg_replication_slots WHERE slot_name = $1`,
      [cdcSlotName(sourceId)],
    );
    const row = r.rows[0];
    if (!row) return { exists: false, lagBytes: null, walStatus: null, active: false };
    return { exists: true, lagBytes: row.lag === null ? null : Number(row.lag), walStatus: row.wal_status, active: row.active };
  });
}

/**
 * Makes the source's publication cover exactly `tables` (publishing partitions as their root) and
 * creates the slot if it is missing. Returns whether the slot was created now: a new slot means
 * every table needs a snapshot taken after it.
 */
export async function prepareMirror(config: PostgresConfig, sourceId: string, tables: string[]): Promise<{ slotCreated: boolean }> {
  const slot = cdcSlotName(sourceId);
  const publication = cdcPublicationName(sourceId);
  return withConnection(config, async (client) => {
    const list = tables.map((t) => qualified(config.schema, t)).join(', ');
    const pub = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
    try {
      if (!pub.rowCount) await client.query(`CREATE PUBLICATION ${publication} FOR TABLE ${list} WITH (publish_via_partition_root = true)`);
      else await client.query(`ALTER PUBLICATION ${publication} SET TABLE ${list}`);
    } catch (err) {
      throw new SourceError(`could not set up publication ${publication}: ${(err as Error).message}`);
    }
    const existing = await client.query<{ wal_status: string | null }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (existing.rowCount) {
      if (existing.rows[0].wal_status === 'lost') {
        throw new SlotLostError(`replication slot ${slot} was invalidated (wal_status = lost: the WAL it needed was removed); resync the source to start over`);
      }
      return { slotCreated: false };
    }
    try {
      await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    } catch (err) {
      throw new SourceError(`could not create replication slot ${slot}: ${(err as Error).message}`);
    }
    return { slotCreated: true };
  });
}
