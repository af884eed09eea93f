import type { Connector } from '../types';
import { SourceError } from '../types';
import { pendoApi, setupError } from './client';
import { pendoConfigSchema, type PendoConfig } from './config';
import { discoverPendo } from './discover';
import { readPendo } from './read';
import { spec } from './spec';
import { pendoTable } from './tables';

export const pendoConnector: Connector<PendoConfig> = {
  spec,
  configSchema: pendoConfigSchema as unknown as Connector<PendoConfig>['configSchema'],

  /**
   * A cheap call any key may make: the page list, of which only the first item is read before hanging up. Asked
   * exactly as a sync asks it (every app), so a key that passes here is one the sync's listings accept.
   */
  async check(config) {
    try {
      for await (const _ of pendoApi(config).jsonItems('GET', '/api/v1/page', { query: { expand: '*' } })) break;
    } catch (err) {
      throw setupError(err, config, 'GET /api/v1/page');
    }
  },

  discover: discoverPendo,

  async describe(_config, table) {
    const t = pendoTable(table);
    if (!t) throw new SourceError(`Pendo has no table "${table}"`);
    return t.columns;
  },

  read: readPendo,
  // Every read reports its position: lists by count, visitors and accounts by their last id.
  fullRefreshResumes: true,
};
