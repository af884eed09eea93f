import type { Connector, ConnectorContext } from '../types';
import { SourceError } from '../types';
import { filesConfigSchema, type FilesConfig } from './config';
import { checkEndpoint } from './endpoint';
import { importReader } from './import-reader';
import { checkConfined, confinedPattern, filesRoot } from './local';
import { probeTables, toDiscovered } from './probe';
import { spec } from './spec';
import { sqlString } from '../../warehouse/client';
import { collectionDdl, namedCollectionName } from './sql';

function engine(ctx: ConnectorContext | undefined) {
  if (!ctx) throw new Error('the Files connector reads storage through the warehouse engine: pass it the warehouse');
  return ctx.warehouse;
}

/**
 * Files in object storage or a local folder, read by the warehouse engine. Linked tables (sync_type "linked")
 * are never copied: api/linked-tables.ts creates a table the engine reads the files through on every query.
 */
export const filesConnector: Connector<FilesConfig> = {
  spec,
  configSchema: filesConfigSchema as unknown as Connector<FilesConfig>['configSchema'],

  // Reaching the bucket is each table's listing (discover): one round trip less, the same errors.
  async check(config) {
    if (config.provider === 'local') filesRoot();
    if (config.provider === 's3_compatible') await checkEndpoint(config.endpoint!);
  },

  async discover(config, ctx) {
    if (config.provider === 's3_compatible') await checkEndpoint(config.endpoint!);
    return (await probeTables(engine(ctx), config)).map(toDiscovered);
  },

  async describe(config, table, ctx) {
    const [probed] = await probeTables(engine(ctx), config, [table]);
    if (!probed) throw new SourceError(`this Files source has no table "${table}"`);
    return probed.columns.map((c) => ({ name: c.name, sourceName: c.name, type: c.type, sourceType: c.type, nullable: /^Nullable\(/.test(c.type) }));
  },

  async *read() {
    throw new SourceError('Files tables are never read row by row: linked ones are read by the engine on every query, imported ones copied by it (files.reader)');
  },

  // Imported tables (full_refresh, append by new files): the engine copies the files (activities/files-import.ts).
  files: {
    async reader(warehouse, source, config, name) {
      const table = config.tables.find((t) => t.name === name);
      if (!table) throw new SourceError(`this Files source has no table "${name}"`);
      // Each run, as each db-schema: the endpoint's name may resolve elsewhere by now.
      if (config.provider === 's3_compatible') await checkEndpoint(config.endpoint!);
      const collection = namedCollectionName(source.id);
      // The engine keeps no collection across starts, and the source's keys may have changed: made as they are now.
      if (config.provider !== 'local') {
        for (const stmt of collectionDdl(collection, { access_key_id: config.access_key_id!, secret_access_key: config.secret_access_key! })) await warehouse.command(stmt);
      }
      let localPath: string | undefined;
      if (config.provider === 'local') {
        // As for a linked table: every file the glob matches now must really be under the root (symlinks followed).
        const root = filesRoot();
        localPath = confinedPattern(root, table.path, 'path');
        const files = await warehouse.queryRows<{ p: string }>(`SELECT _path AS p FROM file(${sqlString(localPath)}, 'One')`);
        checkConfined(root, files.map((f) => f.p), 'path');
      }
      return importReader(config, table, { collection, localPath });
    },
  },
};
