import { z } from 'zod';
import { strictObject } from '../../common/strict-object';

export const OAUTH_UNAVAILABLE =
  'OAuth needs Tributary registered as a Stripe Connect platform with a public redirect URL, which a self-hosted install is not: ' +
  'use a restricted API key (auth_method "api_key")';

export const stripeConfigSchema = strictObject({
  auth_method: z
    .enum(['api_key', 'oauth'], 'auth_method must be "api_key" (restricted API key) or "oauth"')
    .default('api_key')
    .refine((m) => m === 'api_key', OAUTH_UNAVAILABLE),
  stripe_secret_key: z
    .string('stripe_secret_key is required')
    .trim()
    .regex(/^(sk|rk)_(test|live)_[A-Za-z0-9_]+$/, 'must be a Stripe secret key (sk_live_… / sk_test_…) or restricted key (rk_live_… / rk_test_…)'),
  stripe_account_id: z
    .string()
    .trim()
    .regex(/^(acct_[A-Za-z0-9]+)?$/, 'must be a Stripe account id (acct_…)')
    .optional()
    .transform((v) => v || undefined),
});

export type StripeConfig = z.infer<typeof stripeConfigSchema>;
