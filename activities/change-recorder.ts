import type { Catalog } from '../catalog';
import { closeChangeBatch, failChangeBatch, openChangeBatch } from '../catalog/change-batches';
import { CHANGE_INPUT, CHANGE_LOG_TABLE, changeInsertSql, type ChangeSelect } from '../warehouse/change-log';
import { quoteIdent, type Warehouse } from '../warehouse/client';

/**
 * Records the changes a write path made (see warehouse/change-log.ts): opens a batch in the catalog, lets the
 * engine copy the SELECT's rows into the change log under it, and closes it with the count. The only way rows
 * enter the change log, so readers' horizon (catalog/change-batches.ts) covers every writer.
 */
export async function recordChanges(deps: { catalog: Catalog; warehouse: Warehouse }, select: ChangeSelect): Promise<number> {
  const { catalog, warehouse } = deps;
  const batch = await openChangeBatch(catalog.db, select.sourceId, select.table);
  try {
    if (select.input) {
      const { structure, data, format } = select.input;
      await warehouse.insertSelectBytes((source) => changeInsertSql(warehouse.database, batch, { ...select, sql: select.sql.split(CHANGE_INPUT).join(source) }), structure, data, { format });
    } else {
      await warehouse.command(changeInsertSql(warehouse.database, batch, select));
    }
    const counted = await warehouse.queryRows<{ n: string }>(
      `SELECT toString(count()) AS n FROM ${quoteIdent(warehouse.database)}.${CHANGE_LOG_TABLE} WHERE batch = {b:UInt64}`,
      { params: { b: batch.toString() } },
    );
    const n = Number(counted[0]?.n ?? 0);
    await closeChangeBatch(catalog.db, batch, n);
    return n;
  } catch (err) {
    await failChangeBatch(catalog.db, batch).catch(() => undefined);
    throw err;
  }
}
