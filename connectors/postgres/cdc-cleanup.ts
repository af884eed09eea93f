import type pg from 'pg';
import { cdcPublicationName, cdcSlotName } from './cdc-names';
import type { PostgresConfig } from './config';
import { quotePgIdent, withConnection } from './connection';

const OBJECT_IN_USE = '55006';
const UNDEFINED_OBJECT = '42704';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Drops a source's replication slot and publication, tolerating their absence. A walsender still
 * streaming from the slot is terminated first; the drop is retried while the slot stays active
 * (the walsender takes a moment to exit, and a reconnecting stream is terminated again).
 * Returns what existed and was dropped.
 */
export async function dropCdcObjects(
  client: pg.Client,
  sourceId: string,
  opts: { attempts?: number; delayMs?: number } = {},
): Promise<{ slot: boolean; publication: boolean }> {
  const slot = cdcSlotName(sourceId);
  const publication = cdcPublicationName(sourceId);
  const attempts = opts.attempts ?? 40;
  let droppedSlot = false;
  for (let attempt = 1; ; attempt++) {
    const r = await client.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (r.rowCount === 0) break;
    const pid = r.rows[0].active_pid;
    if (pid !== null) await client.query('SELECT pg_terminate_backend($1)', [pid]);
    try {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      droppedSlot = true;
      break;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === UNDEFINED_OBJECT) break; // dropped meanwhile
      if (code !== OBJECT_IN_USE || attempt >= attempts) throw err;
      await sleep(opts.delayMs ?? 250);
    }
  }
  const pub = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  await client.query(`DROP PUBLICATION IF EXISTS ${quotePgIdent(publication)}`);
  return { slot: droppedSlot, publication: pub.rowCount === 1 };
}

/** Connector.cleanup: what deleting a Postgres source undoes at the source. */
export async function cleanupCdc(config: PostgresConfig, source: { id: string }): Promise<void> {
  await withConnection(config, (client) => dropCdcObjects(client, source.id));
}
