import { z } from 'zod';
import { strictObject } from '../../common/strict-object';

/** Pendo's data centres: each has its own host, and a key works only on the host of its subscription. */
export const PENDO_REGIONS = ['US', 'US1', 'EU', 'Japan', 'Australia'] as const;
export type PendoRegion = (typeof PENDO_REGIONS)[number];

export const REGION_HOSTS: Record<PendoRegion, string> = {
  US: 'app.pendo.io',
  US1: 'us1.app.pendo.io',
  EU: 'app.eu.pendo.io',
  Japan: 'app.jpn.pendo.io',
  Australia: 'app.au.pendo.io',
};

export const pendoConfigSchema = strictObject({
  integration_key: z
    .string('integration_key is required: a Pendo integration key (Settings → Integrations → Integration Keys)')
    .trim()
    .min(1, 'integration_key must not be empty')
    .regex(/^\S*$/, 'integration_key must not contain spaces'),
  region: z.enum(PENDO_REGIONS, `region must be one of ${PENDO_REGIONS.join(', ')} (the data centre of your Pendo subscription)`),
});

export type PendoConfig = z.infer<typeof pendoConfigSchema>;
