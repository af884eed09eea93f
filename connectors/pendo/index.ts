import type { Connector } from '../types';
import { SourceError } from '../types';
import { pendoApi, pendoError, setupError } from './client';
import { pendoConfigSchema, type PendoConfig } from './config';
import { discoverPendo } from './discover';
import { nullLastUpdatedCountBody } from './pipeline';
import { readPendo } from './read';
import { spec } from './spec';
import { INCREMENTAL_FIELD, pendoTable } from './tables';

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

  /**
   * Visitors or accounts without `metadata.auto.lastupdated`: an incremental run's filter on it never matches them, so
   * after the first run they are not read again (the job warns with this count; a full refresh still reads them).
   */
  async countNullCursor(config, table, cursorField) {
    const t = pendoTable(table);
    if (t?.kind !== 'aggregation' || cursorField !== INCREMENTAL_FIELD) return 0;
    try {
      const answer = await pendoApi(config).json<{ results?: { count?: unknown }[] }>('POST', '/api/v1/aggregation', { body: nullLastUpdatedCountBody(t.source) });
      const n = answer.results?.[0]?.count;
      return typeof n === 'number' && Number.isFinite(n) ? n : 0;
    } catch (err) {
      throw pendoError(err, config, true);
    }
  },
  // Every read reports its position: lists by count, visitors and accounts by their last id.
  fullRefreshResumes: true,
};
