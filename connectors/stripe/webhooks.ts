import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import { SourceError, WebhookRejected, type Batch, type WebhookCapability, type WebhookEvent } from '../types';
import { callStripe, StripePermissionDenied } from './client';
import { STRIPE_API_SPEC_VERSION } from './columns.generated';
import type { StripeConfig } from './config';
import { eventVersion } from './read';
import { objectColumns, objectRow, rowColumns } from './rows';
import { stripeTable, tableForObject } from './tables';

/** The rank an event gets when nothing else happened to its object in its second: the lowest but one (rank 999 would tie with a listing of that second). */
const UNRANKED = 998;

/** stripe-node's default, stated: a signature older than 5 minutes is a replay. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export const WRITE_WEBHOOKS_PERMISSION =
  'the API key lacks Write on Webhook endpoints. In the Stripe dashboard open Developers → API keys, edit this restricted key, ' +
  'set "Webhook endpoints" to Write and save, then call POST /api/sources/:id/webhook again — or create the endpoint by hand ' +
  'and send its signing secret (whsec_…) to POST /api/sources/:id/webhook-inputs';

function eventTypes(tables: string[]): string[] {
  return [...new Set(tables.flatMap((t) => stripeTable(t)?.events ?? []))].sort();
}

export const stripeWebhooks: WebhookCapability<StripeConfig> = {
  intakePath: 'stripe',

  eventTypes: (table) => stripeTable(table)?.events ?? [],

  async register(config, url, tables) {
    const enabled = eventTypes(tables);
    if (!enabled.length) {
      throw new SourceError(
        tables.length
          ? `Stripe sends no events for ${tables.join(', ')}: their safety-net refresh keeps them, and there is nothing to subscribe to`
          : 'no table of this source is set to sync_type "webhook": enable one first',
      );
    }
    // One key for every attempt: a retried create whose first answer was lost gets that endpoint back, not a second one.
    const idempotencyKey = `tributary-webhook-${randomUUID()}`;
    const endpoint = await callStripe(config, (s) =>
      s.webhookEndpoints.create(
        {
          url,
          enabled_events: enabled as Stripe.WebhookEndpointCreateParams.EnabledEvent[],
          description: 'Tributary: real-time sync of the tables set to webhook',
          // Events in the version the columns follow, whatever the account's default.
          api_version: STRIPE_API_SPEC_VERSION as Stripe.WebhookEndpointCreateParams.ApiVersion,
        },
        { idempotencyKey },
      ),
    ).catch((err) => {
      if (err instanceof StripePermissionDenied) throw new SourceError(`Stripe refused to create the webhook endpoint: ${WRITE_WEBHOOKS_PERMISSION}. (Stripe: ${err.message})`);
      throw err;
    });
    return { endpointId: endpoint.id, secret: endpoint.secret ?? null, enabledEvents: endpoint.enabled_events };
  },

  async update(config, endpointId, tables) {
    const enabled = eventTypes(tables);
    // No webhook table left: the endpoint is disabled at Stripe (kept, so re-enabling a table needs no new secret).
    const endpoint = await callStripe(config, (s) =>
      s.webhookEndpoints.update(
        endpointId,
        enabled.length ? { enabled_events: enabled as Stripe.WebhookEndpointUpdateParams.EnabledEvent[], disabled: false } : { disabled: true },
      ),
    );
    return enabled.length ? endpoint.enabled_events : [];
  },

  async status(config, { endpointId, url }) {
    try {
      let endpoint: Stripe.WebhookEndpoint | undefined;
      if (endpointId) endpoint = await callStripe(config, (s) => s.webhookEndpoints.retrieve(endpointId));
      else {
        // Created by hand: found by its URL, if the key may list endpoints.
        const list = await callStripe(config, (s) => s.webhookEndpoints.list({ limit: 100 }));
        endpoint = list.data.find((e) => e.url === url);
      }
      if (!endpoint) return { status: 'not_found', url, enabled_events: null, error: 'no webhook endpoint with this URL at Stripe' };
      return { status: endpoint.status, url: endpoint.url, enabled_events: endpoint.enabled_events, error: null };
    } catch (err) {
      return { status: 'unknown', url, enabled_events: null, error: (err as Error).message };
    }
  },

  async unregister(config, endpointId) {
    try {
      await callStripe(config, (s) => s.webhookEndpoints.del(endpointId));
    } catch (err) {
      // Already gone (deleted in the dashboard): nothing to undo.
      if (err instanceof Stripe.errors.StripeInvalidRequestError && err.statusCode === 404) return;
      throw err;
    }
  },

  verify(rawBody, headers, secret) {
    const signature = headers['stripe-signature'];
    if (!signature || Array.isArray(signature)) throw new WebhookRejected('missing Stripe-Signature header');
    let event: Stripe.Event;
    try {
      event = Stripe.webhooks.constructEvent(rawBody, signature, secret, SIGNATURE_TOLERANCE_SECONDS);
    } catch (err) {
      throw new WebhookRejected((err as Error).message);
    }
    const object = event.data?.object as unknown as { object?: string; id?: string } | undefined;
    const table = object?.object ? tableForObject(object.object) : undefined;
    return {
      id: event.id,
      type: event.type,
      created: event.created,
      table: table?.name,
      objectId: typeof object?.id === 'string' ? object.id : undefined,
      payload: rawBody.toString('utf8'),
    } satisfies WebhookEvent;
  },

  async rankEvents(config, tableName, seconds) {
    const table = stripeTable(tableName);
    const ranks = new Map<string, number>();
    if (!table?.events.length) return ranks;
    // The Events API lists newest first: the same ranks an incremental read gives (read.ts).
    for (const second of seconds) {
      let rank = 0;
      let after: string | undefined;
      for (;;) {
        const page = await callStripe(config, (s) => s.events.list({ limit: 100, types: table.events, created: { gte: second, lte: second }, starting_after: after }));
        for (const e of page.data) ranks.set(e.id, rank++);
        if (!page.has_more || !page.data.length) break;
        after = page.data[page.data.length - 1].id;
      }
    }
    return ranks;
  },

  toBatch(tableName, payloads, ranks = new Map()): Batch {
    const table = stripeTable(tableName);
    if (!table) throw new Error(`unknown Stripe table "${tableName}"`);
    const columns = objectColumns(table.objectType);
    const lines: string[] = [];
    for (const payload of payloads) {
      const event = JSON.parse(payload) as Stripe.Event;
      const object = event.data.object as unknown as Record<string, unknown>;
      if (object.object !== table.objectType || typeof object.id !== 'string') continue;
      const deleted = table.deleteEvents.includes(event.type) || object.deleted === true;
      // Deliveries come out of order and twice: the event's time, then its rank within that second, decide
      // which state stays. Unranked (no other state of the object in its second) it sorts below any ranked
      // one, so the ranks learnt when a second state arrives always win over it.
      lines.push(objectRow(columns, object, eventVersion(event.created, ranks.get(event.id) ?? UNRANKED), deleted));
    }
    const data = Buffer.from(lines.join(''), 'utf8');
    return { format: 'TabSeparated', columns: rowColumns(columns), data, rows: lines.length };
  },
};
