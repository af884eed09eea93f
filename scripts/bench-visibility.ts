/**
 * CDC commit-to-visible measurement for the benchmarks (`bench:cdc`, `bench:lag`): a mixed workload of
 * transactions on an orders-shaped table (scripts/bench-orders.ts), a poller of the warehouse through the API,
 * and the lag of each commit to the first poll that sees its rows.
 */
import type { RunningPlatform } from '../test/support/platform';

/** Changes per transaction: 60 updates, 30 inserts, 10 deletes. */
export const PER_TXN = 100;

export const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

/** Mixed transactions over a moving window of ids: deletes from the low end, inserts at the top. */
export class Workload {
  low = 1;
  next: number;
  constructor(
    rows: number,
    private readonly table = 'orders',
  ) {
    this.next = rows + 1;
  }
  /**
   * One transaction's SQL; returns the highest id it inserts and the first of the 10 it deletes. `tag`, when given,
   * is the status its updates and inserts write (so a consumer of the changes can tell which transaction made them).
   */
  txn(tag?: string): { sql: string; maxId: number; firstDeleted: number } {
    const ins = this.next;
    this.next += 30;
    const del = this.low;
    this.low += 10;
    const span = ins - this.low;
    const upd = new Set<number>();
    while (upd.size < 60) upd.add(this.low + Math.floor(Math.random() * span));
    return {
      sql: `BEGIN;
        UPDATE ${this.table} SET amount = amount + 1, status = '${tag ?? 'updated'}', updated_at = now() WHERE id IN (${[...upd].join(',')});
        INSERT INTO ${this.table} (id, customer_id, created_at, updated_at, email, amount, status, metadata, is_paid)
          SELECT g, g % 50000, now(), now(), 'new' || g || '@example.com', 9.99, '${tag ?? 'new'}', '{"source":"bench"}', false FROM generate_series(${ins}, ${ins + 29}) g;
        DELETE FROM ${this.table} WHERE id BETWEEN ${del} AND ${del + 9};
        COMMIT`,
      maxId: ins + 29,
      firstDeleted: del,
    };
  }
}

export async function warehouseMaxId(p: RunningPlatform, table: string): Promise<number> {
  const r = await p.api('POST', '/api/query', { sql: `SELECT toInt64(max(id)) AS m FROM ${table}` });
  return Number(r.body.rows?.[0]?.m ?? 0);
}

export async function waitForMaxId(p: RunningPlatform, table: string, id: number, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  while ((await warehouseMaxId(p, table)) < id) {
    if (Date.now() > deadline) throw new Error(`the warehouse did not reach id ${id} in ${table}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Seen {
  maxId: number;
  at: number;
}

/** Polls `table`'s highest id through /api/query, one poll at a time, `everyMs` apart, until stopped. */
export function pollVisible(p: RunningPlatform, table: string, everyMs: number) {
  const visible: Seen[] = [];
  let polling = true;
  const done = (async () => {
    while (polling) {
      const m = await warehouseMaxId(p, table);
      visible.push({ maxId: m, at: performance.now() });
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    visible,
    async stop() {
      polling = false;
      await done;
      return visible;
    },
  };
}

/** For each commit (in order), the time until the first poll after it that saw its rows; undefined if none did. */
export function commitToVisible(commits: Seen[], visible: Seen[]): (number | undefined)[] {
  let v = 0;
  return commits.map((c) => {
    while (v < visible.length && (visible[v].maxId < c.maxId || visible[v].at < c.at)) v++;
    return v < visible.length ? visible[v].at - c.at : undefined;
  });
}
