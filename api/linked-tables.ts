import { unsealConfig, type Catalog } from '../catalog';
import { listLinkedSchemas, setLinkedColumns, type SchemaRow } from '../catalog/schemas';
import { getSource, listSources, type SourceRow } from '../catalog/sources';
import { filesConfigSchema, type FilesConfig } from '../connectors/files/config';
import { checkConfined, confinedPattern, filesRoot } from '../connectors/files/local';
import { probeTables } from '../connectors/files/probe';
import { collectionDdl, directHost, linkedDatabaseDdl, linkedEngine, linkedTableDdl, namedCollectionName, unlinkDdl, type LinkedColumn } from '../connectors/files/sql';
import { SourceError } from '../connectors/types';
import type { OutgoingPolicy } from '../destinations/outgoing-network';
import { sqlString, type Warehouse } from '../warehouse/client';
import { warehouseTableName } from '../warehouse/tables';
import type { ApiDeps } from './context';
import { againstSource } from './source-setup';

/**
 * Linked file tables (sync_type "linked"): nothing is copied. The engine holds, for each, an `S3` (or `File`)
 * table in a Memory database and the view `{prefix}_{name}` users query; the source's keys live in its named
 * collection. None of that is kept by the engine across starts (engine-process.ts): it is all re-created from
 * the catalog, where the keys are sealed, at every engine start — so an engine never opens a data dir that
 * names a bucket it would wait for, and no secret is on disk in clear.
 */

export const isLinked = (s: Pick<SchemaRow, 'sync_type'>) => s.sync_type === 'linked';

function filesConfig(catalog: Catalog, source: SourceRow): FilesConfig {
  return filesConfigSchema.parse(unsealConfig(catalog.secrets, source)) as FilesConfig;
}

/** The columns a linked table is created with: the inferred ones, with the user's types over them. */
export function effectiveColumns(schema: SchemaRow): LinkedColumn[] {
  const overrides = schema.linked_type_overrides ?? {};
  return (schema.linked_columns ?? []).map((c) => ({ name: c.name, type: overrides[c.name] ?? c.type }));
}

/**
 * The statements that make one source's linked tables exist as the catalog says (collection first). A local
 * folder's table is never among the startup statements: the engine's File table fixes the files its glob matches
 * when it is created, so it is created, confinement checked, right before each query that reads it (relinkLocal).
 */
function sourceStatements(catalog: Catalog, database: string, source: SourceRow, schemas: SchemaRow[], mode: 'replace' | 'ensure' = 'replace'): string[] {
  const config = filesConfig(catalog, source);
  const collection = namedCollectionName(source.id);
  const out = config.provider === 'local' ? [] : collectionDdl(collection, { access_key_id: config.access_key_id!, secret_access_key: config.secret_access_key! });
  for (const schema of schemas) {
    const table = config.tables.find((t) => t.name === schema.name);
    const columns = effectiveColumns(schema);
    if (!table || !columns.length) continue;
    const localPath = config.provider === 'local' ? confinedPattern(filesRoot(), table.path, 'path') : undefined;
    out.push(...linkedTableDdl(database, warehouseTableName(source.prefix, schema.name), schema.id, columns, linkedEngine(config, table, { collection, localPath }), mode));
  }
  return out;
}

/** Every linked table of the catalog: the engine's startup statements. One source that cannot be read is skipped. */
export async function linkedStartupStatements(catalog: Catalog, database: string, log?: { warn(o: object, m: string): void }): Promise<string[]> {
  const bySource = new Map<string, SchemaRow[]>();
  for (const s of await listLinkedSchemas(catalog.db)) bySource.set(s.source_id, [...(bySource.get(s.source_id) ?? []), s]);
  if (!bySource.size) return [];
  const out = [linkedDatabaseDdl(database)];
  for (const source of await listSources(catalog.db)) {
    const schemas = bySource.get(source.id);
    if (!schemas || (source.config as { provider?: string }).provider === 'local') continue;
    try {
      out.push(...sourceStatements(catalog, database, source, schemas, 'ensure'));
    } catch (err) {
      log?.warn({ sourceId: source.id, err: (err as Error).message }, 'linked tables of a source not re-created');
    }
  }
  return out;
}

/**
 * The hosts of the catalog's Files sources (linked and imported tables alike) the engine may connect to without the
 * egress proxy (connectors/files/sql.ts directHost): asked at every engine start, like the startup statements.
 * A source linked later is proxied until the next engine start.
 */
export async function filesDirectHosts(catalog: Catalog, policy: OutgoingPolicy, log?: { warn(o: object, m: string): void }): Promise<string[]> {
  const hosts = new Set<string>();
  for (const source of await listSources(catalog.db)) {
    if (source.source_type !== 'Files') continue;
    try {
      const host = directHost(filesConfig(catalog, source), policy);
      if (host) hosts.add(host);
    } catch (err) {
      log?.warn({ sourceId: source.id, err: (err as Error).message }, 'a files source left to the egress proxy');
    }
  }
  return [...hosts].sort();
}

async function run(wh: Warehouse, statements: string[]) {
  for (const stmt of statements) await wh.command(stmt);
}

/** Creates (or re-creates, with its current columns) one linked table, and its source's collection. */
export async function linkSchema(deps: Pick<ApiDeps, 'catalog' | 'warehouse'>, source: SourceRow, schema: SchemaRow): Promise<void> {
  await againstSource(async () => {
    const config = filesConfig(deps.catalog, source);
    const table = config.tables.find((t) => t.name === schema.name);
    if (config.provider === 'local' && table) {
      // Every file the glob matches now must really be under the root (symlinks followed) before the engine may read it.
      const root = filesRoot();
      const glob = confinedPattern(root, table.path, 'path');
      const files = await deps.warehouse.queryRows<{ p: string }>(`SELECT _path AS p FROM file(${sqlString(glob)}, 'One')`);
      checkConfined(root, files.map((f) => f.p), 'path');
    }
    await run(deps.warehouse, sourceStatements(deps.catalog, deps.warehouse.database, source, [schema]));
  });
}

/**
 * Before a user's query: the local-folder linked tables it names are created again, so a file added to the folder
 * shows (a File table reads the files its glob matched when it was made), each file's confinement checked again.
 */
export async function relinkLocal(deps: Pick<ApiDeps, 'catalog' | 'warehouse'>, sql: string): Promise<void> {
  const linked = await listLinkedSchemas(deps.catalog.db);
  if (!linked.length) return;
  const sources = new Map((await listSources(deps.catalog.db)).map((s) => [s.id, s]));
  for (const schema of linked) {
    const source = sources.get(schema.source_id);
    if (!source || (source.config as { provider?: string }).provider !== 'local') continue;
    const view = warehouseTableName(source.prefix, schema.name);
    if (new RegExp(`(^|[^A-Za-z0-9_])${view}($|[^A-Za-z0-9_])`).test(sql)) await linkSchema(deps, source, schema);
  }
}

export async function unlinkSchema(deps: Pick<ApiDeps, 'warehouse'>, source: SourceRow, schema: SchemaRow): Promise<void> {
  await run(deps.warehouse, unlinkDdl(deps.warehouse.database, warehouseTableName(source.prefix, schema.name), schema.id));
}

/** A source going away: its linked tables and its named collection. */
export async function unlinkSource(deps: Pick<ApiDeps, 'warehouse'>, source: SourceRow, schemas: SchemaRow[]): Promise<void> {
  for (const s of schemas.filter(isLinked)) await unlinkSchema(deps, source, s);
  await deps.warehouse.command(`DROP NAMED COLLECTION IF EXISTS ${namedCollectionName(source.id)}`);
}

/** "Refresh schema": the files' columns inferred again (the user's type overrides kept), the table re-created. */
export async function refreshLinkedColumns(deps: Pick<ApiDeps, 'catalog' | 'warehouse'>, schema: SchemaRow): Promise<SchemaRow> {
  const source = (await getSource(deps.catalog.db, schema.source_id))!;
  const config = filesConfig(deps.catalog, source);
  const [probed] = await againstSource(() => probeTables(deps.warehouse, config, [schema.name]));
  if (!probed) throw new SourceError(`the source has no table "${schema.name}" any more`);
  const updated = (await setLinkedColumns(deps.catalog.db, schema.id, probed.columns, null))!;
  if (updated.should_sync) await linkSchema(deps, source, updated);
  return updated;
}

/** What a linked table's pattern matches now, and its rows (counted by the engine, within the query time limit). */
export async function linkedStats(deps: Pick<ApiDeps, 'catalog' | 'warehouse'>, schema: SchemaRow) {
  const source = (await getSource(deps.catalog.db, schema.source_id))!;
  const config = filesConfig(deps.catalog, source);
  const [probed] = await againstSource(() => probeTables(deps.warehouse, config, [schema.name]));
  let rows: number | null = null;
  if (schema.should_sync) {
    const [r] = await deps.warehouse
      .queryRows<{ n: string }>(`SELECT count() AS n FROM \`${deps.warehouse.database}\`.\`${warehouseTableName(source.prefix, schema.name)}\` SETTINGS max_execution_time = 30`)
      .catch(() => [{ n: null as unknown as string }]);
    rows = r.n === null ? null : Number(r.n);
  }
  return { files: probed?.files.count ?? 0, bytes: probed?.files.bytes ?? 0, sample: probed?.files.sample ?? [], rows_estimate: rows };
}
