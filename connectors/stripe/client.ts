import Stripe from 'stripe';
import { SourceError } from '../types';
import { STRIPE_API_SPEC_VERSION } from './columns.generated';
import type { StripeConfig } from './config';

/**
 * Every Stripe call goes through `callStripe`: the real `stripe` client, pinned to the API version the
 * columns were generated from, paced by a per-key rate limiter, and patient with 429s — a sync never
 * fails on a rate limit, it waits as long as Stripe asks.
 */

export const isTestKey = (key: string) => /^(sk|rk)_test_/.test(key);

function rpsFromEnv(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** Stripe's limits: 25 requests/s in test mode, 100 in live mode (TRIBUTARY_STRIPE_TEST_RPS / _LIVE_RPS). */
export function requestsPerSecond(key: string): number {
  return isTestKey(key) ? rpsFromEnv('TRIBUTARY_STRIPE_TEST_RPS', 25) : rpsFromEnv('TRIBUTARY_STRIPE_LIVE_RPS', 100);
}

/** Spaces calls evenly at `rps` (a bucket of one): the process's calls with one key never exceed it. */
class Pacer {
  private next = 0;
  constructor(private readonly rps: number) {}

  async slot(): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + 1000 / this.rps;
    if (at > now) await sleep(at - now);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pacers = new Map<string, Pacer>();
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
      // Connection errors and 5xx are retried by the client; 429s by callStripe, which waits as Stripe asks.
      maxNetworkRetries: 3,
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

/** How long Stripe asks us to wait before retrying a 429, else an exponential backoff capped at 20 s. */
function retryDelayMs(err: { headers?: Record<string, string> }, attempt: number): number {
  const header = Number(err.headers?.['retry-after']);
  if (Number.isFinite(header) && header >= 0) return Math.min(header * 1000, 60_000);
  return Math.min(500 * 2 ** attempt, 20_000) * (0.75 + Math.random() / 2);
}

/**
 * Runs one Stripe call at the key's pace. A 429 is waited out and retried until it goes through;
 * `onWait` runs while waiting (the activity heartbeats there, so a long wait is not a dead worker).
 * An invalid key or a missing permission becomes a SourceError with Stripe's own message.
 */
export async function callStripe<T>(config: StripeConfig, fn: (stripe: Stripe) => Promise<T>, opts: { onWait?: () => void } = {}): Promise<T> {
  const key = config.stripe_secret_key;
  let pacer = pacers.get(key);
  if (!pacer) pacers.set(key, (pacer = new Pacer(requestsPerSecond(key))));
  const stripe = stripeClient(config);
  for (let attempt = 0; ; attempt++) {
    await pacer.slot();
    try {
      return await fn(stripe);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeRateLimitError || (err as { statusCode?: number }).statusCode === 429) {
        opts.onWait?.();
        let wait = retryDelayMs(err as { headers?: Record<string, string> }, attempt);
        // Waits are cut into short sleeps, each followed by a heartbeat.
        while (wait > 0) {
          await sleep(Math.min(wait, 5_000));
          wait -= 5_000;
          opts.onWait?.();
        }
        continue;
      }
      if (err instanceof Stripe.errors.StripeAuthenticationError) throw new SourceError(err.message, 'stripe_secret_key');
      if (err instanceof Stripe.errors.StripePermissionError) throw new StripePermissionDenied(err.message, 'stripe_secret_key');
      if (err instanceof Stripe.errors.StripeConnectionError) throw new SourceError(`Could not reach the Stripe API: ${err.message}`);
      throw err;
    }
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
