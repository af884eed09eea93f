import express, { Router } from 'express';
import { z } from 'zod';
import { listSchemas } from '../../catalog/schemas';
import { getSource } from '../../catalog/sources';
import { getWebhook } from '../../catalog/webhooks';
import { connectorFor } from '../../connectors/registry';
import { WebhookRejected } from '../../connectors/types';
import { signalWebhookEvents } from '../../temporal/webhook-workflows';
import { ensureWebhookEventsTable, storeWebhookEvent, webhookEventSeen, webhookEventsTable } from '../../warehouse/webhook-events';
import type { ApiDeps } from '../context';
import { ApiError, notFound } from '../errors';
import { strictObject } from '../../common/strict-object';
import { isWebhook, registerWebhook, saveSigningSecret, webhookInfo } from '../webhook-management';
import { isUuid, sourceOr404 } from './sources';

export const signingSecretSchema = strictObject({
  signing_secret: z.string().trim().regex(/^whsec_\S+$/, 'signing_secret must be the endpoint\'s signing secret, starting with "whsec_"').optional(),
  inputs: strictObject({ signing_secret: z.string().trim().regex(/^whsec_\S+$/, 'signing_secret must start with "whsec_"') }).optional(),
}).refine((b) => Boolean(b.signing_secret ?? b.inputs?.signing_secret), { message: 'signing_secret is required', path: ['signing_secret'] });

/** The webhook tab of a source (behind the API token). */
export function webhookRoutes(deps: ApiDeps): Router {
  const r = Router();
  const db = deps.catalog.db;

  r.post('/sources/:id/webhook', async (req, res) => {
    res.json(await registerWebhook(deps, await sourceOr404(db, req.params.id)));
  });

  r.post('/sources/:id/webhook-inputs', async (req, res) => {
    const source = await sourceOr404(db, req.params.id);
    const body = signingSecretSchema.parse(req.body ?? {});
    res.json(await saveSigningSecret(deps, source, (body.signing_secret ?? body.inputs?.signing_secret)!));
  });

  r.get('/sources/:id/webhook-info', async (req, res) => {
    res.json(await webhookInfo(deps, await sourceOr404(db, req.params.id)));
  });

  return r;
}

/**
 * The intake: `POST /webhooks/<type>/<source id>`, public (the source's signature authenticates it).
 * A delivery is verified on its raw bytes, kept in `{prefix}_webhook_events`, and handed to the source's
 * workflow; only then is it answered 200, so an accepted event is never lost. Anything that is not a
 * verified delivery for a known source gets a 4xx and changes nothing.
 */
export function webhookIntakeRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post('/webhooks/:type/:sourceId', express.raw({ type: () => true, limit: '5mb' }), async (req, res) => {
    const source = isUuid(req.params.sourceId) ? await getSource(deps.catalog.db, req.params.sourceId) : undefined;
    const webhooks = source ? connectorFor(source.source_type)?.webhooks : undefined;
    if (!source || !webhooks || webhooks.intakePath !== req.params.type) throw notFound(`Webhook intake ${req.path}`);
    const hook = await getWebhook(deps.catalog.db, source.id);
    if (!hook?.signing_secret) {
      // Not 2xx: the sender keeps retrying (Stripe: for 3 days), so nothing is lost once a secret is supplied.
      throw new ApiError(503, 'webhook_disabled', 'This intake is disabled until a signing secret is set (register the webhook, or POST it to /api/sources/:id/webhook-inputs)');
    }
    let event;
    try {
      event = webhooks.verify(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), req.headers, deps.catalog.secrets.open<string>(hook.signing_secret));
    } catch (err) {
      if (err instanceof WebhookRejected) throw new ApiError(400, 'invalid_signature', `Webhook rejected: ${err.message}`);
      throw err;
    }
    const schema = event.table ? (await listSchemas(deps.catalog.db, source.id)).find((s) => s.name === event.table) : undefined;
    if (!schema?.should_sync || !isWebhook(schema)) {
      res.json({ received: true, ignored: event.table ? `table ${event.table} is not synced by webhook` : `no table holds the object of ${event.type}` });
      return;
    }
    const raw = webhookEventsTable(source.prefix);
    await ensureWebhookEventsTable(deps.warehouse, raw);
    const duplicate = await webhookEventSeen(deps.warehouse, raw, event.id);
    if (!duplicate) await storeWebhookEvent(deps.warehouse, raw, event);
    // Signalled even for a repeat: the first delivery may have been stored and then lost its signal.
    await signalWebhookEvents(deps.temporal, deps.taskQueue, source, [event.id]);
    res.json({ received: true, duplicate });
  });
  return r;
}
