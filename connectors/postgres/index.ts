import type { Connector } from '../types';
import { SourceError } from '../types';
import { schemaExists, listColumns } from './catalog-queries';
import { cleanupCdc } from './cdc-cleanup';
import { checkCdcPrerequisites } from './cdc-prerequisites';
import { postgresCdc } from './cdc';
import { postgresConfigSchema, type PostgresConfig } from './config';
import { qualified, quotePgIdent, withConnection } from './connection';
import { discoverTables } from './discover';
import { readTable } from './read';
import { spec } from './spec';
import { mapColumns } from './types';

export const postgresConnector: Connector<PostgresConfig> = {
  spec,
  configSchema: postgresConfigSchema as unknown as Connector<PostgresConfig>['configSchema'],

  async check(config) {
    await withConnection(config, async (client) => {
      if (!(await schemaExists(client, config.schema))) {
        throw new SourceError(`schema "${config.schema}" does not exist in database "${config.dbname}"`, 'schema');
      }
    });
  },

  discover: (config) => withConnection(config, (client) => discoverTables(client, config)),

  async describe(config, table) {
    const columns = await withConnection(config, (client) => listColumns(client, config.schema));
    const cols = columns.get(table);
    if (!cols) throw new SourceError(`table "${config.schema}"."${table}" does not exist`);
    return mapColumns(cols);
  },

  read: readTable,

  countNullCursor: (config, table, field) =>
    withConnection(config, async (client) => {
      const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(config.schema, table)} WHERE ${quotePgIdent(field)} IS NULL`);
      return Number(r.rows[0].n);
    }),

  checkCdcPrerequisites,

  cdc: postgresCdc,

  /** Deleting the source: its replication slot (after terminating a walsender still on it) and publication. */
  cleanup: cleanupCdc,
};
