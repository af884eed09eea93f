import crypto from 'node:crypto';
import { Router } from 'express';
import { firstChangeBatchSince } from '../../catalog/change-batches';
import {
  deleteDestination,
  END_OF_BATCH_SEQ,
  getDestination,
  insertDestination,
  latestChangeBatch,
  listDestinations,
  updateDestination,
  type DestinationRow,
} from '../../catalog/destinations';
import type { CatalogDb } from '../../catalog/db';
import { MASK } from '../../catalog/secrets';
import { getSource } from '../../catalog/sources';
import { filterErrors } from '../../destinations/filter';
import { templateError } from '../../destinations/template';
import type { DestinationFilters, DestinationSecrets, WebhookDestinationConfig } from '../../destinations/types';
import { ensureDelivery, signalDestinationChanged, terminateDelivery } from '../../temporal/destination-workflows';
import { CHANGE_LOG_TABLE } from '../../warehouse/change-log';
import { quoteIdent } from '../../warehouse/client';
import type { ApiDeps } from '../context';
import { ApiError, notFound } from '../errors';
import {
  createDestinationSchema,
  listDestinationsQuerySchema,
  patchDestinationSchema,
  SECRET_HEADER_NAME,
  type CreateDestination,
} from '../destination-schemas';
import { isUuid } from './sources';

/**
 * /api/destinations: webhook destinations (seed 002). The catalog row is the truth; its delivery workflow
 * (workflows/deliver-destination.ts) is started at create, told of every edit, and terminated at delete.
 *
 * Secrets: a header is secret when given as `{ "value": …, "secret": true }` or when its name looks like a
 * credential (SECRET_HEADER_NAME: Authorization, Cookie, X-Api-Key, …-Token, …-Secret; `"secret": false` keeps
 * one in clear). Secret values and the `whsec_` signing secret are sealed with the catalog's SecretBox and shown
 * as ******** in every answer; the signing secret is shown once, in the create answer. In a PATCH, a secret
 * header given as ******** keeps its stored value (an answer can be sent back as it is).
 */

/** Standard Webhooks' secret: whsec_ + base64 of 24 random bytes (destinations/signing.ts's newSigningSecret once merged). */
function newSigningSecret(): string {
  return `whsec_${crypto.randomBytes(24).toString('base64')}`;
}

type HeaderInput = CreateDestination['headers'];

/** Splits headers into clear ones and secret ones; a MASK value of a header that was secret keeps the stored value. */
function splitHeaders(input: HeaderInput, stored?: { config: WebhookDestinationConfig; secrets: DestinationSecrets }) {
  const clear: Record<string, string> = {};
  const secret: Record<string, string> = {};
  const details: { field: string; message: string }[] = [];
  for (const [name, v] of Object.entries(input)) {
    const value = typeof v === 'string' ? v : v.value;
    const isSecret = typeof v === 'string' ? SECRET_HEADER_NAME.test(name) : (v.secret ?? SECRET_HEADER_NAME.test(name));
    if (value === MASK) {
      const kept = stored && Object.entries(stored.secrets.headers).find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
      if (kept === undefined) {
        details.push({ field: `headers.${name}`, message: `${MASK} stands for a stored secret value, and this destination has none for ${name}: give the value` });
        continue;
      }
      secret[name] = kept;
      continue;
    }
    (isSecret ? secret : clear)[name] = value;
  }
  return { clear, secret, details };
}

export function openSecrets(deps: Pick<ApiDeps, 'catalog'>, row: Pick<DestinationRow, 'secrets'>): DestinationSecrets {
  return row.secrets ? deps.catalog.secrets.open<DestinationSecrets>(row.secrets) : { headers: {}, signing_secret: '' };
}

/** Where a new or replayed delivery starts: after every change so far (`now`) or just before the first at or after a time. */
async function startCheckpoint(db: CatalogDb, startFrom: string): Promise<{ batch: bigint; seq: number }> {
  if (startFrom !== 'now') {
    const at = new Date(startFrom);
    if (at.getTime() > Date.now()) {
      throw new ApiError(400, 'validation_error', 'start_from: a replay starts at a time in the past (or "now")', [
        { field: 'start_from', message: 'a replay starts at a time in the past (or "now")' },
      ]);
    }
    const first = await firstChangeBatchSince(db, at);
    if (first !== null) return { batch: first - 1n, seq: END_OF_BATCH_SEQ };
  }
  return { batch: await latestChangeBatch(db), seq: END_OF_BATCH_SEQ };
}

/** The template's and the filters' problems (each naming its path), as one 400. */
async function checkContent(deps: ApiDeps, content: { body?: unknown; filters?: DestinationFilters }, check: { body: boolean; filters: boolean }) {
  const details: { field: string; message: string }[] = [];
  if (check.body) {
    const problem = templateError(content.body);
    if (problem) details.push({ field: problem.path, message: problem.message });
  }
  if (check.filters) for (const p of await filterErrors(deps, content.filters)) details.push({ field: p.path, message: p.message });
  return details;
}

const invalid = (details: { field: string; message: string }[]) =>
  new ApiError(400, 'validation_error', details.map((d) => `${d.field}: ${d.message}`).join('; '), details);

/** Changes after the checkpoint of the destination's tables and operations (the expression aside), and the oldest one's time. */
async function lagOf(deps: ApiDeps, d: DestinationRow): Promise<{ changes_after_checkpoint: number; oldest_after_checkpoint_at: string | null } | null> {
  const f = d.config.filters ?? {};
  const where = [
    '(batch, seq) > ({b:UInt64}, {s:UInt32})',
    ...(f.source_id ? ['source_id = {src:String}'] : []),
    ...(f.tables?.length ? ['`table` IN {tables:Array(String)}'] : []),
    ...(f.operations?.length ? ['toString(op) IN {ops:Array(String)}'] : []),
  ];
  try {
    const rows = await deps.warehouse.queryRows<{ n: string; oldest: string }>(
      `SELECT toString(count()) AS n, toString(min(landed_at)) AS oldest FROM ${quoteIdent(deps.warehouse.database)}.${CHANGE_LOG_TABLE} WHERE ${where.join(' AND ')}`,
      { params: { b: d.checkpoint_batch, s: Math.min(Number(d.checkpoint_seq), END_OF_BATCH_SEQ), src: f.source_id ?? '', tables: f.tables ?? [], ops: f.operations ?? [] } },
    );
    const n = Number(rows[0]?.n ?? 0);
    return { changes_after_checkpoint: n, oldest_after_checkpoint_at: n ? new Date(`${rows[0].oldest.replace(' ', 'T')}Z`).toISOString() : null };
  } catch (err) {
    deps.log.warn({ err, destinationId: d.id }, 'destination lag not available');
    return null;
  }
}

const iso = (t: Date | string | null) => (t === null ? null : new Date(t).toISOString());

/** A destination as the API shows it: secrets masked (the signing secret in clear only when `signingSecret` is given). */
export function presentDestination(d: DestinationRow, lag: Awaited<ReturnType<typeof lagOf>>, signingSecret?: string) {
  const c = d.config;
  const headers: Record<string, string> = { ...c.headers };
  for (const name of c.secret_headers) headers[name] = MASK;
  return {
    id: d.id,
    name: d.name,
    type: d.type,
    url: c.url,
    method: c.method,
    headers,
    secret_headers: c.secret_headers,
    ...(c.body !== undefined ? { body: c.body } : {}),
    filters: c.filters ?? {},
    batch_size: c.batch_size,
    timeout_ms: c.timeout_ms,
    enabled: d.enabled,
    health_state: d.health_state,
    disabled_until: iso(d.disabled_until),
    latest_error: d.latest_error,
    signing_secret: signingSecret ?? MASK,
    checkpoint: { batch: String(d.checkpoint_batch), seq: Number(d.checkpoint_seq) },
    lag,
    created_at: iso(d.created_at)!,
    updated_at: iso(d.updated_at)!,
  };
}

export async function destinationOr404(db: CatalogDb, id: string): Promise<DestinationRow> {
  const d = isUuid(id) ? await getDestination(db, id) : undefined;
  if (!d) throw notFound(`Destination ${id}`);
  return d;
}

/** The URL is refused when the outgoing-network policy forbids it (link-local, cloud metadata, private ranges). */
async function checkUrl(_url: string): Promise<void> {
  // destinations/outgoing-network.ts (checkOutgoingUrl) once merged.
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function destinationRoutes(deps: ApiDeps): Router {
  const r = Router();
  const db = deps.catalog.db;

  r.post('/destinations', async (req, res) => {
    const b = createDestinationSchema.parse(req.body ?? {});
    const body = b.body === null ? undefined : b.body;
    const headers = splitHeaders(b.headers);
    const details = [...headers.details, ...(await checkContent(deps, { body, filters: b.filters }, { body: true, filters: true }))];
    if (details.length) throw invalid(details);
    await checkUrl(b.url);
    const checkpoint = await startCheckpoint(db, b.start_from);
    const signingSecret = newSigningSecret();
    const config: WebhookDestinationConfig = {
      url: b.url,
      method: b.method,
      headers: headers.clear,
      secret_headers: Object.keys(headers.secret),
      ...(body !== undefined ? { body } : {}),
      filters: b.filters,
      batch_size: b.batch_size,
      timeout_ms: b.timeout_ms,
    };
    const secrets: DestinationSecrets = { headers: headers.secret, signing_secret: signingSecret };
    const row = await insertDestination(db, {
      id: crypto.randomUUID(),
      name: b.name,
      type: 'webhook',
      config,
      secrets: deps.catalog.secrets.seal(secrets),
      enabled: b.enabled,
      checkpoint_batch: checkpoint.batch,
      checkpoint_seq: checkpoint.seq,
    });
    await ensureDelivery(deps.temporal, deps.taskQueue, row);
    deps.log.info({ destinationId: row.id, destination: row.name, url: row.config.url }, 'destination created');
    res.status(201).json(presentDestination(row, await lagOf(deps, row), signingSecret));
  });

  r.get('/destinations', async (req, res) => {
    const q = listDestinationsQuerySchema.parse(req.query ?? {});
    let rows = await listDestinations(db);
    if (q.enabled !== undefined) rows = rows.filter((d) => d.enabled === q.enabled);
    if (q.health_state) rows = rows.filter((d) => d.health_state === q.health_state);
    if (q.source_id) rows = rows.filter((d) => d.config.filters?.source_id === q.source_id);
    if (q.table) {
      // Those that receive its changes: named in their tables, or taking every table (of their source).
      const prefixes = new Map<string, string | undefined>();
      const kept: DestinationRow[] = [];
      for (const d of rows) {
        const f = d.config.filters ?? {};
        if (f.tables?.length) {
          if (f.tables.includes(q.table)) kept.push(d);
          continue;
        }
        if (!f.source_id) {
          kept.push(d);
          continue;
        }
        if (!prefixes.has(f.source_id)) prefixes.set(f.source_id, (await getSource(db, f.source_id))?.prefix);
        const prefix = prefixes.get(f.source_id);
        if (prefix && q.table.startsWith(`${prefix}_`)) kept.push(d);
      }
      rows = kept;
    }
    res.json({ results: await Promise.all(rows.map(async (d) => presentDestination(d, await lagOf(deps, d)))) });
  });

  r.get('/destinations/:id', async (req, res) => {
    const d = await destinationOr404(db, req.params.id);
    res.json(presentDestination(d, await lagOf(deps, d)));
  });

  r.patch('/destinations/:id', async (req, res) => {
    const existing = await destinationOr404(db, req.params.id);
    const p = patchDestinationSchema.parse(req.body ?? {});
    const stored = { config: existing.config, secrets: openSecrets(deps, existing) };
    const config: WebhookDestinationConfig = { ...existing.config };
    let secrets = stored.secrets;
    const details: { field: string; message: string }[] = [];
    if (p.url !== undefined) config.url = p.url;
    if (p.method !== undefined) config.method = p.method;
    if (p.batch_size !== undefined) config.batch_size = p.batch_size;
    if (p.timeout_ms !== undefined) config.timeout_ms = p.timeout_ms;
    if (p.headers !== undefined) {
      const h = splitHeaders(p.headers, stored);
      details.push(...h.details);
      config.headers = h.clear;
      config.secret_headers = Object.keys(h.secret);
      secrets = { ...secrets, headers: h.secret };
    }
    if ('body' in p) {
      if (p.body === null || p.body === undefined) delete config.body;
      else config.body = p.body;
    }
    if (p.filters !== undefined) config.filters = p.filters;
    details.push(...(await checkContent(deps, config, { body: 'body' in p, filters: p.filters !== undefined })));
    if (details.length) throw invalid(details);
    if (p.url !== undefined) await checkUrl(p.url);
    const configChanged = !sameJson(config, existing.config) || !sameJson(secrets.headers, stored.secrets.headers);
    const enabled = p.enabled ?? existing.enabled;
    // An edit, or enabling it again, gives a destination that its health had stopped a fresh start.
    const resetHealth = enabled && existing.health_state !== 'healthy' && (configChanged || p.enabled === true);
    const checkpoint = p.start_from !== undefined ? await startCheckpoint(db, p.start_from) : undefined;
    const row = await updateDestination(db, existing.id, {
      name: p.name,
      config: configChanged ? config : undefined,
      secrets: sameJson(secrets.headers, stored.secrets.headers) ? undefined : deps.catalog.secrets.seal(secrets),
      enabled: p.enabled,
      checkpoint,
      resetHealth,
    });
    if (!row) throw notFound(`Destination ${existing.id}`);
    await signalDestinationChanged(deps.temporal, deps.taskQueue, row);
    deps.log.info({ destinationId: row.id, configChanged, resetHealth, enabled: row.enabled, checkpointMoved: Boolean(checkpoint) }, 'destination changed');
    res.json(presentDestination(row, await lagOf(deps, row)));
  });

  r.delete('/destinations/:id', async (req, res) => {
    const d = await destinationOr404(db, req.params.id);
    const terminated = await terminateDelivery(deps.temporal, d.id, 'destination deleted');
    await deleteDestination(db, d.id);
    deps.log.info({ destinationId: d.id, destination: d.name }, 'destination deleted');
    res.json({ id: d.id, deleted: true, delivery_terminated: terminated });
  });

  return r;
}
