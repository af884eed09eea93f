import { unsealConfig } from '../catalog';
import { listSchemas, type SchemaRow } from '../catalog/schemas';
import type { SourceRow } from '../catalog/sources';
import { getWebhook, saveWebhook } from '../catalog/webhooks';
import { SourceError, type Connector, type WebhookCapability } from '../connectors/types';
import { terminateWebhookWorkflow } from '../temporal/webhook-workflows';
import { ensureWebhookEventsTable, webhookEventsTable } from '../warehouse/webhook-events';
import type { ApiDeps } from './context';
import { badRequest } from './errors';
import { parseConnectionConfig, resolveConnector } from './source-setup';

/**
 * A source's webhook endpoint (seed 001 step 6): register it at the source, or take the signing secret of
 * one created by hand; report both sides' status; keep its events in step with the webhook tables; remove it
 * with the source.
 */

export const isWebhook = (s: Pick<SchemaRow, 'sync_type'>) => s.sync_type === 'webhook';

function webhookSide(deps: ApiDeps, source: SourceRow): { connector: Connector; webhooks: WebhookCapability; config: Record<string, unknown> } {
  const connector = resolveConnector(source.source_type);
  if (!connector.webhooks) {
    throw badRequest(`${connector.spec.label} sources do not support webhooks; their tables sync by polling`, [
      { field: 'source_type', message: 'no webhook support' },
    ]);
  }
  return { connector, webhooks: connector.webhooks, config: parseConnectionConfig(connector, unsealConfig(deps.catalog.secrets, source)) };
}

export function webhookUrl(deps: ApiDeps, source: SourceRow, webhooks: WebhookCapability): string {
  return `${deps.publicUrl.replace(/\/+$/, '')}/webhooks/${webhooks.intakePath}/${source.id}`;
}

const webhookTables = async (deps: ApiDeps, source: SourceRow) =>
  (await listSchemas(deps.catalog.db, source.id)).filter((s) => s.should_sync && isWebhook(s));

/** POST /api/sources/:id/webhook: `{ success, webhook_url, error }`; never registers a second endpoint. */
export async function registerWebhook(deps: ApiDeps, source: SourceRow) {
  const { webhooks, config } = webhookSide(deps, source);
  // The raw history exists from the start, so it can be queried before the first event.
  await ensureWebhookEventsTable(deps.warehouse, webhookEventsTable(source.prefix));
  const url = webhookUrl(deps, source, webhooks);
  const existing = await getWebhook(deps.catalog.db, source.id);
  const tables = (await webhookTables(deps, source)).map((s) => s.name);
  if (existing?.endpoint_id) {
    // Already registered: bring its events in line with today's webhook tables, nothing more.
    try {
      const events = await webhooks.update(config, existing.endpoint_id, tables);
      await saveWebhook(deps.catalog.db, source.id, { url: existing.url, enabled_events: events });
      return { success: true, webhook_url: existing.url, error: null, already_registered: true };
    } catch (err) {
      if (err instanceof SourceError) return { success: false, webhook_url: existing.url, error: err.message, already_registered: true };
      throw err;
    }
  }
  try {
    const created = await webhooks.register(config, url, tables);
    await saveWebhook(deps.catalog.db, source.id, {
      url,
      endpoint_id: created.endpointId,
      enabled_events: created.enabledEvents,
      signing_secret: created.secret ? deps.catalog.secrets.seal(created.secret) : null,
    });
    deps.log.info({ sourceId: source.id, endpointId: created.endpointId }, 'webhook endpoint registered');
    const error = created.secret
      ? null
      : `the endpoint ${created.endpointId} was created but the source returned no signing secret: copy it from the source's dashboard to POST /api/sources/${source.id}/webhook-inputs`;
    return { success: true, webhook_url: url, error, already_registered: false };
  } catch (err) {
    if (!(err instanceof SourceError)) throw err;
    // The intake stays disabled until a signing secret is supplied (POST …/webhook-inputs).
    await saveWebhook(deps.catalog.db, source.id, { url });
    return { success: false, webhook_url: url, error: err.message, already_registered: false };
  }
}

/** POST /api/sources/:id/webhook-inputs: the signing secret of an endpoint created by hand. */
export async function saveSigningSecret(deps: ApiDeps, source: SourceRow, secret: string) {
  const { webhooks } = webhookSide(deps, source);
  await ensureWebhookEventsTable(deps.warehouse, webhookEventsTable(source.prefix));
  const existing = await getWebhook(deps.catalog.db, source.id);
  await saveWebhook(deps.catalog.db, source.id, { url: existing?.url ?? webhookUrl(deps, source, webhooks), signing_secret: deps.catalog.secrets.seal(secret) });
  deps.log.info({ sourceId: source.id }, 'webhook signing secret stored');
  return webhookInfo(deps, source);
}

/** GET /api/sources/:id/webhook-info: Tributary's side and the source's side of the endpoint. */
export async function webhookInfo(deps: ApiDeps, source: SourceRow) {
  if (!resolveConnector(source.source_type).webhooks) {
    return { supports_webhooks: false, exists: false, webhook_url: null, schema_mapping: {}, intake: null, external_status: null };
  }
  const { webhooks, config } = webhookSide(deps, source);
  const hook = await getWebhook(deps.catalog.db, source.id);
  const url = hook?.url ?? webhookUrl(deps, source, webhooks);
  const schemaMapping: Record<string, string> = {};
  for (const s of await webhookTables(deps, source)) for (const e of webhooks.eventTypes(s.name)) schemaMapping[e] = s.id;
  const exists = Boolean(hook && (hook.endpoint_id || hook.signing_secret));
  return {
    supports_webhooks: true,
    exists,
    webhook_url: url,
    schema_mapping: schemaMapping,
    intake: {
      enabled: Boolean(hook?.signing_secret),
      reason: hook?.signing_secret ? null : 'no signing secret yet: register the webhook, or send the secret of one created by hand to …/webhook-inputs',
      events_applied: Number(hook?.events_applied ?? 0),
      last_event_at: hook?.last_event_at ? new Date(hook.last_event_at).toISOString() : null,
    },
    external_status: exists ? await webhooks.status(config, { endpointId: hook!.endpoint_id, url }) : null,
  };
}

/**
 * The webhook tables changed (enabled, disabled, sync type): a registered endpoint follows, so it sends
 * exactly their events. Returns warnings rather than failing the change that triggered it.
 */
export async function followWebhookTables(deps: ApiDeps, source: SourceRow): Promise<string[]> {
  const hook = await getWebhook(deps.catalog.db, source.id);
  if (!hook?.endpoint_id) return [];
  try {
    const { webhooks, config } = webhookSide(deps, source);
    const events = await webhooks.update(config, hook.endpoint_id, (await webhookTables(deps, source)).map((s) => s.name));
    await saveWebhook(deps.catalog.db, source.id, { url: hook.url, enabled_events: events });
    return [];
  } catch (err) {
    return [`could not update the webhook endpoint's events at the source: ${(err as Error).message}`];
  }
}

/** Deleting the source: its workflow stops and the endpoint Tributary registered is deleted at the source. */
export async function removeWebhook(deps: ApiDeps, source: SourceRow, config: Record<string, unknown>, connector: Connector): Promise<string[]> {
  await terminateWebhookWorkflow(deps.temporal, source, 'source deleted');
  const hook = await getWebhook(deps.catalog.db, source.id);
  if (!hook?.endpoint_id || !connector.webhooks) return [];
  try {
    await connector.webhooks.unregister(config, hook.endpoint_id);
    return [];
  } catch (err) {
    return [`deleting the webhook endpoint ${hook.endpoint_id} at the source failed: ${(err as Error).message}`];
  }
}
