import { ApiHttpError, classifyHttpFailure } from '../kit';
import type { Connector } from '../types';
import { SourceError } from '../types';
import { baseUrl, pendoApi, pendoError } from './client';
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
      const mapped = pendoError(err, config);
      if (mapped instanceof SourceError) throw mapped;
      if (err instanceof ApiHttpError) throw new SourceError(`Pendo answered GET /api/v1/page with HTTP ${err.status} in region ${config.region}: ${err.body.slice(0, 300)}`);
      if (classifyHttpFailure(err).kind === 'transient') throw new SourceError(`Could not reach Pendo at ${baseUrl(config.region)}: ${(err as Error).message}`, 'region');
      throw err;
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
