import type { Connector } from '../types';
import { SourceError } from '../types';
import { callStripe, StripePermissionDenied } from './client';
import { stripeConfigSchema, type StripeConfig } from './config';
import { discoverStripe } from './discover';
import { readStripe } from './read';
import { objectColumns } from './rows';
import { spec } from './spec';
import { stripeTable } from './tables';
import { stripeWebhooks } from './webhooks';

export const stripeConnector: Connector<StripeConfig> = {
  spec,
  configSchema: stripeConfigSchema as unknown as Connector<StripeConfig>['configSchema'],

  /** A cheap call that any valid key may make; a key lacking this one permission is still a valid key. */
  async check(config) {
    try {
      await callStripe(config, (s) => s.balance.retrieve());
    } catch (err) {
      if (err instanceof StripePermissionDenied) return;
      throw err;
    }
  },

  discover: discoverStripe,

  async describe(_config, table) {
    const t = stripeTable(table);
    if (!t) throw new SourceError(`Stripe has no table "${table}"`);
    return objectColumns(t.objectType);
  },

  read: readStripe,
  // Listings resume after the last id loaded.
  fullRefreshResumes: true,

  webhooks: stripeWebhooks,
};
