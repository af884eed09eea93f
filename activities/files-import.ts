import { ApplicationFailure, Context } from '@temporalio/activity';
import { forgetImportedFiles, importedFiles, recordImportedFiles } from '../catalog/imported-files';
import type { IncrementalProgress, IncrementalResult, LoadResult } from '../common/types';
import type { FileTableReader } from '../connectors/types';
import { settingsClause } from '../connectors/files/sql';
import { quoteIdent, sqlString } from '../warehouse/client';
import { keepExistingColumnNames, type WarehouseColumn } from '../warehouse/columns';
import { evolutionWarnings, evolveTable, IncompatibleSchemaChange, tableColumns, type ExistingColumn } from '../warehouse/evolution';
import { deleteFilesSql, FILE_COLUMN, fileVersion, importFilesSql, listFilesSql, slices, type ListedFile } from '../warehouse/file-import';
import { deletedRowsChangesSql } from '../warehouse/change-diff';
import { createTableSql, dropTable, sortingKey } from '../warehouse/tables';
import { changesRecordedTo } from '../catalog/change-marks';
import { recordChanges } from './change-recorder';
import { dropEarlierAttempts, stagingTableName, testHold, warehouseKey, type ActivityDeps, type Heartbeats, type SchemaContext } from './context';

/**
 * Imported files tables: a files source's table copied into a MergeTree by the engine itself
 * (`INSERT … SELECT … FROM s3(…)`), never rows through JavaScript. A full refresh loads every file into a staging
 * table that the workflow swaps in like any other refresh. An append run loads the files it has not loaded yet, or
 * whose version (ETag) changed, in slices: a slice's files lose their earlier rows (if any), are inserted, and only
 * then recorded in the catalog — so a worker killed anywhere in between leaves a slice the retry loads again from
 * scratch, never twice. Files gone from the bucket keep their rows (the point of importing over linking). A
 * rewritten file's old rows go into the change log as deletes just before they are deleted; the run's inserts are
 * recorded after it (recordIncrementalChanges).
 */

/** Files (and about how many bytes) per insert of an append run: how often the run commits, and what a retry redoes. */
function sliceLimits(): { files: number; bytes: number } {
  const n = (v: string | undefined, d: number) => (Number.isInteger(Number(v)) && Number(v) > 0 ? Number(v) : d);
  return { files: n(process.env.TRIBUTARY_FILES_IMPORT_SLICE_FILES, 100), bytes: n(process.env.TRIBUTARY_FILES_IMPORT_SLICE_BYTES, 1024 * 1024 * 1024) };
}

async function prepare(deps: ActivityDeps, sc: SchemaContext, table: string): Promise<{ reader: FileTableReader; columns: WarehouseColumn[]; existing: ExistingColumn[] }> {
  const files = sc.connector.files;
  if (!files) throw ApplicationFailure.nonRetryable(`${sc.source.source_type} is not a files source`, 'BadConfig');
  const [reader, existing] = await Promise.all([
    files.reader(deps.warehouse, { id: sc.source.id, prefix: sc.source.prefix }, sc.config, sc.schema.name),
    tableColumns(deps.warehouse, table),
  ]);
  // The engine's inference over the files as they are now (db-schema's, without its listing and sample read: the
  // load itself says which file does not parse).
  const inferred = await deps.warehouse.queryRows<{ name: string; type: string }>(`DESCRIBE ${reader.from()}${settingsClause(reader.settings ?? {})}`);
  const described: WarehouseColumn[] = inferred.map((c) => ({ name: c.name, sourceName: c.name, type: c.type, sourceType: c.type, nullable: /^Nullable\(/.test(c.type) }));
  const columns = [...keepExistingColumnNames(described, existing.map((c) => c.name)).filter((c) => c.name !== FILE_COLUMN.name), FILE_COLUMN];
  return { reader, columns, existing };
}

async function count(deps: ActivityDeps, table: string, paths?: string[]): Promise<number> {
  const where = paths ? ` WHERE ${quoteIdent(FILE_COLUMN.name)} IN (${paths.map(sqlString).join(', ')})` : '';
  const r = await deps.warehouse.queryRows<{ n: string }>(`SELECT toString(count()) AS n FROM ${quoteIdent(deps.warehouse.database)}.${quoteIdent(table)}${where}`);
  return Number(r[0]?.n ?? 0);
}

/** Every file into a fresh staging table, in one statement (a retried attempt starts over, as a COPY does). */
export async function importAllFiles(deps: ActivityDeps, hb: Heartbeats, sc: SchemaContext, jobId: string, version: string): Promise<LoadResult> {
  const { warehouse, catalog } = deps;
  const attempt = Context.current().info.attempt;
  const staging = stagingTableName(sc.targetTable, jobId, attempt);
  const { reader, columns } = await prepare(deps, sc, sc.targetTable);
  const key = warehouseKey(sc.schema.primary_key_columns, columns);
  // The attempt's own table (never an earlier attempt's, which may still be alive unseen): what earlier ones left goes.
  await dropEarlierAttempts(warehouse, sc.targetTable, jobId, attempt);
  await dropTable(warehouse, staging);
  await warehouse.command(createTableSql(warehouse.database, staging, columns, { kind: key.length ? 'ReplacingMergeTree' : 'MergeTree', orderBy: key }, { cluster: warehouse.cluster }));
  // The refresh replaces what an append run loaded: should the table go back to append, it starts from every file.
  await forgetImportedFiles(catalog.db, sc.schema.id);
  hb.beat({ phase: 'loading', rows: 0, bytes: 0, batches: 0 });
  try {
    await warehouse.command(importFilesSql(warehouse.database, staging, columns, reader, BigInt(version)));
  } catch (err) {
    if (Context.current().cancellationSignal.aborted) await dropTable(warehouse, staging);
    throw err;
  }
  const rows = await count(deps, staging);
  hb.beat({ phase: 'loading', rows, bytes: 0, batches: 1 });
  deps.log.info({ schemaId: sc.schema.id, jobId, table: sc.targetTable, rows }, 'files imported');
  return { stagingTable: staging, rows };
}

/** The files not loaded yet, or rewritten since (by ETag), into the live table, slice by slice. */
export async function importNewFiles(deps: ActivityDeps, hb: Heartbeats, sc: SchemaContext, jobId: string, version: string, engineNow: () => Promise<string>): Promise<IncrementalResult> {
  const ctx = Context.current();
  const { warehouse, catalog } = deps;
  const table = sc.targetTable;
  const { reader, columns, existing } = await prepare(deps, sc, table);
  let evolution: string[] = [];
  if (!existing.length) {
    await warehouse.command(createTableSql(warehouse.database, table, columns, { kind: 'MergeTree', orderBy: warehouseKey(sc.schema.primary_key_columns, columns) }, { ifNotExists: true, cluster: warehouse.cluster }));
  } else {
    try {
      evolution = evolutionWarnings(await evolveTable(warehouse, table, columns, existing));
    } catch (err) {
      if (err instanceof IncompatibleSchemaChange) throw ApplicationFailure.nonRetryable(err.message, 'IncompatibleSchemaChange');
      throw err;
    }
  }
  const progress: IncrementalProgress = (ctx.info.heartbeatDetails as IncrementalProgress | undefined) ?? { phase: 'loading', rows: 0, bytes: 0, batches: 0, warnings: [] };
  progress.changesFrom ??= await engineNow();
  hb.beat(progress);

  const listed: ListedFile[] = (await warehouse.queryRows<{ path: string; etag: string; size: string; mtime: string }>(listFilesSql(reader))).map((r) => ({
    path: r.path,
    version: fileVersion(r),
    size: Number(r.size),
  }));
  const loaded = await importedFiles(catalog.db, sc.schema.id);
  const pending = listed.filter((f) => loaded.get(f.path) !== f.version);
  const present = new Set(listed.map((f) => f.path));
  const gone = [...loaded.keys()].filter((p) => !present.has(p)).length;
  const limits = sliceLimits();
  // Up to where the table's rows are in the change log (unchanged during the run: its changes are recorded after it).
  const recordedTo = await changesRecordedTo(catalog.db, sc.schema.id);
  for (const slice of slices(pending, limits.files, limits.bytes)) {
    ctx.cancellationSignal.throwIfAborted();
    const paths = slice.map((f) => f.path);
    // Rows of these paths already here: a rewritten file's old version, or a slice a killed attempt had inserted
    // but not recorded. Deleted only where there are some (a lightweight delete is a mutation of the table).
    // `recorded`: some of the rows are in the change log as inserts (synced before its changes were last recorded).
    const inPaths = `${quoteIdent(FILE_COLUMN.name)} IN (${paths.map(sqlString).join(', ')})`;
    const recordedBefore = recordedTo ? `_tributary_synced_at <= toDateTime64(${sqlString(recordedTo)}, 6, 'UTC')` : 'false';
    const held = await warehouse.queryRows<{ p: string; recorded: number }>(
      `SELECT ${quoteIdent(FILE_COLUMN.name)} AS p, toUInt8(max(${recordedBefore})) AS recorded FROM ${quoteIdent(warehouse.database)}.${quoteIdent(table)} WHERE ${inPaths} GROUP BY p`,
    );
    if (held.length) {
      const heldPaths = held.map((h) => h.p);
      // Destinations saw those rows inserted: they see them deleted before the reload's inserts (recorded after the
      // run, recordIncrementalChanges). Rows a killed attempt inserted were never recorded, so are no deletes. A kill
      // between this record and the delete records the deletes again on the retry: at least once.
      const recorded = held.filter((h) => Number(h.recorded) === 1).map((h) => h.p);
      if (recorded.length) {
        const [cols, key] = await Promise.all([tableColumns(warehouse, table), sortingKey(warehouse, table)]);
        const where = `${quoteIdent(FILE_COLUMN.name)} IN (${recorded.map(sqlString).join(', ')}) AND ${recordedBefore}`;
        const deletes = await recordChanges(
          { catalog, warehouse },
          { sourceId: sc.source.id, table, sql: deletedRowsChangesSql(warehouse.database, table, cols, key, where, BigInt(version)) },
        );
        deps.log.debug({ jobId, table, files: recorded.length, deletes }, 'rewritten files: deletes recorded');
      }
      await warehouse.command(deleteFilesSql(warehouse.database, table, heldPaths));
    }
    await warehouse.command(importFilesSql(warehouse.database, table, columns, reader, BigInt(version), paths));
    await testHold(deps, 'files slice inserted');
    await recordImportedFiles(catalog.db, sc.schema.id, slice);
    progress.rows += await count(deps, table, paths);
    progress.bytes += slice.reduce((n, f) => n + f.size, 0);
    progress.batches += 1;
    hb.beat(progress);
    deps.log.debug({ jobId, table, slice: progress.batches, files: slice.length, rows: progress.rows }, 'file slice loaded');
  }
  const warnings = [
    ...evolution,
    ...(progress.warnings ?? []),
    ...(gone ? [`${gone} file${gone > 1 ? 's' : ''} loaded earlier ${gone > 1 ? 'are' : 'is'} no longer in the source: ${gone > 1 ? 'their' : 'its'} rows are kept`] : []),
  ];
  deps.log.info({ schemaId: sc.schema.id, jobId, table, files: pending.length, rows: progress.rows }, 'new files imported');
  return { rows: progress.rows, warnings, changesFrom: progress.changesFrom };
}
