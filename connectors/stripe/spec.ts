import type { ConnectorSpec } from '../types';
import { OAUTH_UNAVAILABLE } from './config';

export const spec: ConnectorSpec = {
  name: 'Stripe',
  label: 'Stripe',
  caption:
    'Charges, customers, invoices, subscriptions and 11 more tables. Webhook sync (recommended) lands every create, update and delete ' +
    'within seconds; incremental reads the Events API for updates; append and full refresh poll.',
  featured: true,
  unreleasedSource: false,
  fields: [
    {
      name: 'auth_method',
      label: 'Authentication',
      type: 'select',
      required: true,
      options: [
        { label: 'Restricted API key', value: 'api_key' },
        { label: `OAuth connection (unavailable: ${OAUTH_UNAVAILABLE})`, value: 'oauth' },
      ],
    },
    { name: 'stripe_secret_key', label: 'API key', type: 'password', required: true, secret: true, placeholder: 'rk_live_…' },
    { name: 'stripe_account_id', label: 'Account id (optional: sent as the Stripe-Account header)', type: 'input', required: false, placeholder: 'acct_…' },
  ],
};
