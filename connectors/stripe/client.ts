import Stripe from 'stripe';
import { callWithRetries, pacerFor, rateFromEnv, retryAfterMs, type FailureKind } from '../kit';
import { SourceError } from '../types';
import { STRIPE_API_SPEC_VERSION } from './columns.generated';
import type { StripeConfig } from './config';

/**
 * Every Stripe call goes through `callStripe`: the real `stripe` client, pinned to the API version the
 * columns were generated from, paced per key and retried by the kit (connectors/kit/calls.ts) — a sync
 * never fails on a rate limit, it waits as long as Stripe asks.
 */

export const isTestKey = (key: string) => /^(sk|rk)_test_/.test(key);

/** Stripe's limits: 25 requests/s in test mode, 100 in live mode (TRIBUTARY_STRIPE_TEST_RPS / _LIVE_RPS). */
export function requestsPerSecond(key: string): number {
  return isTestKey(key) ? rateFromEnv('TRIBUTARY_STRIPE_TEST_RPS', 25) : rateFromEnv('TRIBUTARY_STRIPE_LIVE_RPS', 100);
}

const clients = new Map<string, Stripe>();

/** TRIBUTARY_STRIPE_API_URL points the client at stripe-mock or a test double (default: Stripe itself). */
function endpoint(): { host?: string; port?: number; protocol?: 'http' | 'https' } {
  const raw = process.env.TRIBUTARY_STRIPE_API_URL;
  if (!raw) return {};
  const u = new URL(raw);
  const protocol = u.protocol === 'http:' ? 'http' : 'https';
  return { host: u.hostname, port: Number(u.port || (protocol === 'http' ? 80 : 443)), protocol };
}

export function stripeClient(config: StripeConfig): Stripe {
  const cacheKey = `${config.stripe_secret_key}\u0000${config.stripe_account_id ?? ''}\u0000${process.env.TRIBUTARY_STRIPE_API_URL ?? ''}`;
  let client = clients.get(cacheKey);
  if (!client) {
    client = new Stripe(config.stripe_secret_key, {
      apiVersion: STRIPE_API_SPEC_VERSION as Stripe.StripeConfig['apiVersion'],
      stripeAccount: config.stripe_account_id || undefined,
      // Retries are the kit's (callStripe), whose back-off heartbeats; the client's own would sleep silently.
      // A POST that must not happen twice passes its own idempotencyKey, the same on every attempt.
      maxNetworkRetries: 0,
      timeout: 60_000,
      appInfo: { name: 'Tributary' },
      ...endpoint(),
    });
    clients.set(cacheKey, client);
  }
  return client;
}

/** A 403: the restricted key lacks a permission. `message` is Stripe's, which names the permission. */
export class StripePermissionDenied extends SourceError {}

/**
 * What a failed Stripe call means to the kit: a 429 is waited out (Retry-After); a lost connection, a 409 (a lock
 * timeout) and a 5xx are retried, as the client itself would — unless Stripe answers `Stripe-Should-Retry`, which
 * decides; the rest is thrown.
 */
export function classifyStripeFailure(err: unknown): FailureKind {
  const e = err as { statusCode?: number; headers?: Record<string, string> } | null;
  const status = e?.statusCode ?? 0;
  if (err instanceof Stripe.errors.StripeRateLimitError || status === 429) return { kind: 'rate_limited', retryAfterMs: retryAfterMs(e?.headers?.['retry-after'] ?? null) };
  if (err instanceof Stripe.errors.StripeConnectionError) return { kind: 'transient' };
  const advice = e?.headers?.['stripe-should-retry'];
  if (advice === 'true' || advice === 'false') return { kind: advice === 'true' ? 'transient' : 'fatal' };
  return status === 409 || status >= 500 ? { kind: 'transient' } : { kind: 'fatal' };
}

/**
 * Runs one Stripe call at the key's pace, through the kit's retries; `onWait` runs while waiting (the activity
 * heartbeats there, so a long wait is not a dead worker). An invalid key or a missing permission becomes a
 * SourceError with Stripe's own message.
 */
export async function callStripe<T>(config: StripeConfig, fn: (stripe: Stripe) => Promise<T>, opts: { onWait?: () => void } = {}): Promise<T> {
  const key = config.stripe_secret_key;
  const stripe = stripeClient(config);
  try {
    return await callWithRetries(() => fn(stripe), {
      pacer: pacerFor('stripe', key, requestsPerSecond(key)),
      classify: classifyStripeFailure,
      onWait: opts.onWait,
      // As many as the client made itself before the kit took over: a check the user waits on fails within seconds.
      transientAttempts: 3,
    });
  } catch (err) {
    if (err instanceof Stripe.errors.StripeAuthenticationError) throw new SourceError(err.message, 'stripe_secret_key');
    if (err instanceof Stripe.errors.StripePermissionError) throw new StripePermissionDenied(err.message, 'stripe_secret_key');
    if (err instanceof Stripe.errors.StripeConnectionError) throw new SourceError(`Could not reach the Stripe API: ${err.message}`);
    throw err;
  }
}

type ListParams = { limit: number; starting_after?: string; created?: Stripe.RangeQueryParam } & Record<string, unknown>;
export type StripeList = { data: Record<string, unknown>[]; has_more: boolean };

/** One page of a table's list endpoint, through the `stripe` resource that serves it. */
export function listPage(stripe: Stripe, table: string, params: ListParams, parent?: string): Promise<StripeList> {
  const p = params as never;
  const lists: Record<string, () => Promise<unknown>> = {
    Account: () => stripe.accounts.list(p),
    BalanceTransaction: () => stripe.balanceTransactions.list(p),
    Charge: () => stripe.charges.list(p),
    CreditNote: () => stripe.creditNotes.list(p),
    Customer: () => stripe.customers.list(p),
    CustomerBalanceTransaction: () => stripe.customers.listBalanceTransactions(parent!, p),
    CustomerPaymentMethod: () => stripe.customers.listPaymentMethods(parent!, p),
    Dispute: () => stripe.disputes.list(p),
    Invoice: () => stripe.invoices.list(p),
    InvoiceItem: () => stripe.invoiceItems.list(p),
    Payout: () => stripe.payouts.list(p),
    Price: () => stripe.prices.list(p),
    Product: () => stripe.products.list(p),
    Refund: () => stripe.refunds.list(p),
    Subscription: () => stripe.subscriptions.list(p),
  };
  const list = lists[table];
  if (!list) throw new Error(`no Stripe list call for table "${table}"`);
  return list() as Promise<StripeList>;
}
