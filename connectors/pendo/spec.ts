import type { ConnectorSpec } from '../types';
import { PENDO_REGIONS, REGION_HOSTS } from './config';

export const spec: ConnectorSpec = {
  name: 'Pendo',
  label: 'Pendo',
  caption:
    'Alpha: features, pages, guides, visitors and accounts from Pendo\'s Engage API. Full refresh for every table; ' +
    'visitors and accounts also incremental on their last update (deletions need a full refresh).',
  featured: false,
  unreleasedSource: false,
  fields: [
    { name: 'integration_key', label: 'Integration key', type: 'password', required: true, secret: true, placeholder: 'Pendo integration key' },
    {
      name: 'region',
      label: 'Data region (the one you log in to; the key works only there)',
      type: 'select',
      required: true,
      options: PENDO_REGIONS.map((r) => ({ label: `${r} (${REGION_HOSTS[r]})`, value: r })),
    },
  ],
};
