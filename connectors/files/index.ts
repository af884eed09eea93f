import type { Connector, ConnectorContext } from '../types';
import { SourceError } from '../types';
import { filesConfigSchema, type FilesConfig } from './config';
import { checkEndpoint } from './endpoint';
import { filesRoot } from './local';
import { probeTables, toDiscovered } from './probe';
import { spec } from './spec';

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
    throw new SourceError('Files tables are linked: the engine reads them on every query, nothing is synced');
  },
};
