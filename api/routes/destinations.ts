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
import { filterErrors, matchChanges } from '../../destinations/filter';
import { buildWebhookRequest, maskRequest, sendRequest } from '../../destinations/http-request';
import { checkOutgoingUrl, outgoingPolicyFromEnv, type OutgoingPolicy } from '../../destinations/outgoing-network';
import { newSigningSecret } from '../../destinations/signing';
import { changeContext, renderChange, renderErrorMessage, templateError } from '../../destinations/template';
import type { DestinationFilters, DestinationSecrets, WebhookDestinationConfig } from '../../destinations/types';
import { ensureDelivery, signalDestinationChanged, terminateDelivery } from '../../temporal/destination-workflows';
import { CHANGE_LOG_TABLE, type ChangeRow } from '../../warehouse/change-log';
import { quoteIdent } from '../../warehouse/client';
import type { ApiDeps } from '../context';
import { ApiError, notFound } from '../errors';
import {
  createDestinationSchema,
  listDestinationsQuerySchema,
  patchDestinationSchema,
  SECRET_HEADER_NAME,
  testDestinationSchema,
  testUnsavedDestinationSchema,
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

export const outgoingPolicy = (deps: Pick<ApiDeps, 'outgoingNetwork'>): OutgoingPolicy => deps.outgoingNetwork ?? outgoingPolicyFromEnv(process.env);

/**
 * The URL as written is refused when the outgoing-network policy forbids it (link-local, cloud metadata, private
 * ranges); the address a name resolves to is judged again whenever a request connects.
 */
function checkUrl(deps: ApiDeps, url: string, field = 'url'): void {
  const refusal = checkOutgoingUrl(url, outgoingPolicy(deps));
  if (refusal) throw invalid([{ field, message: `url ${refusal}` }]);
}

/** What a test renders from: the latest change of `table` in the change log, or `row` given as a change of it. */
async function sampleChange(
  deps: ApiDeps,
  config: WebhookDestinationConfig,
  t: { table?: string; row?: Record<string, unknown>; op?: ChangeRow['op'] },
): Promise<{ change: ChangeRow; from: 'change_log' | 'given_row' }> {
  const table = t.table ?? config.filters?.tables?.[0];
  if (t.row) {
    const now = new Date().toISOString().replace('T', ' ').replace('Z', '');
    return {
      from: 'given_row',
      change: { batch: '0', seq: 0, source_id: config.filters?.source_id ?? '', table: table ?? 'test', op: t.op ?? 'insert', key: '{}', row: JSON.stringify(t.row), old_row: null, version: '0', landed_at: now },
    };
  }
  if (!table) throw invalid([{ field: 'table', message: 'give the table whose latest change to send (or a row): the destination has no tables in its filters' }]);
  const ops = t.op ? [t.op] : (config.filters?.operations ?? []);
  const rows = await deps.warehouse.queryRows<ChangeRow>(
    `SELECT toString(batch) AS batch, seq, source_id, \`table\`, toString(op) AS op, key, row, old_row, toString(version) AS version, toString(landed_at) AS landed_at
       FROM ${quoteIdent(deps.warehouse.database)}.${CHANGE_LOG_TABLE}
      WHERE \`table\` = {t:String}${ops.length ? ' AND toString(op) IN {ops:Array(String)}' : ''}
      ORDER BY batch DESC, seq DESC LIMIT 1`,
    { params: { t: table, ops } },
  );
  if (!rows.length) {
    throw invalid([{ field: t.table ? 'table' : 'filters.tables', message: `the change log holds no ${ops.length ? `${ops.join('/')} ` : ''}change of ${table}: give a row to send` }]);
  }
  return { from: 'change_log', change: rows[0] };
}

/**
 * A test request: rendered from a real change (or a given row), built and signed as the delivery would, sent once
 * (no retries), and answered with what was sent (secret headers masked), what came back and how long it took.
 * Not a delivery: no checkpoint, health, log or metric is touched.
 */
async function testSend(
  deps: ApiDeps,
  config: WebhookDestinationConfig,
  secrets: DestinationSecrets,
  t: { table?: string; row?: Record<string, unknown>; op?: ChangeRow['op'] },
  /** `destination.` for an unsaved configuration: the fields of the template are under it. */
  prefix = '',
) {
  const { change, from } = await sampleChange(deps, config, t);
  let ctx;
  try {
    ctx = changeContext(change);
  } catch (err) {
    throw invalid([{ field: 'row', message: (err as Error).message }]);
  }
  let body: unknown;
  try {
    body = renderChange(config.body, ctx);
  } catch (err) {
    const message = renderErrorMessage(err);
    const [field, ...rest] = message.split(': ');
    throw new ApiError(400, 'render_error', `The template failed on this change: ${message}`, [{ field: prefix + (rest.length && field.startsWith('body') ? field : 'body'), message: rest.length ? rest.join(': ') : message }]);
  }
  // Whether the filters would let this change through (the expression only over a table the filters name).
  let matches: boolean | null = null;
  try {
    matches = (await matchChanges(deps.warehouse, config.filters, [change]))[0];
  } catch (err) {
    deps.log.warn({ err }, 'destination test: filters not evaluated');
  }
  const req = buildWebhookRequest(config, secrets, [{ id: ctx.id, body }], Math.floor(Date.now() / 1000));
  const outcome = await sendRequest(req, { timeoutMs: config.timeout_ms, policy: outgoingPolicy(deps) });
  const shown = maskRequest(req, config.secret_headers, MASK);
  return {
    change: { id: ctx.id, table: ctx.table, op: ctx.op, from },
    matches_filters: matches,
    request: { url: shown.url, method: shown.method, headers: shown.headers, body: shown.body ?? null },
    response: outcome.kind === 'response' ? { status: outcome.status, headers: outcome.headers, body: outcome.body, truncated: outcome.truncated } : null,
    error: outcome.kind === 'network_error' ? outcome.error : null,
    duration_ms: outcome.durationMs,
  };
}

/**
 * A new destination's config (create, or an unsaved one to test) and its secret header values, once every
 * problem is ruled out: headers, template, filters, URL (fields under `prefix`).
 */
async function newConfig(deps: ApiDeps, b: Omit<CreateDestination, 'start_from' | 'name' | 'type' | 'enabled'>, prefix = '') {
  const body = b.body === null ? undefined : b.body;
  const headers = splitHeaders(b.headers);
  const details = [...headers.details, ...(await checkContent(deps, { body, filters: b.filters }, { body: true, filters: true }))];
  if (details.length) throw invalid(details.map((x) => ({ ...x, field: prefix + x.field })));
  checkUrl(deps, b.url, `${prefix}url`);
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
  return { config, secretHeaders: headers.secret };
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function destinationRoutes(deps: ApiDeps): Router {
  const r = Router();
  const db = deps.catalog.db;

  r.post('/destinations', async (req, res) => {
    const b = createDestinationSchema.parse(req.body ?? {});
    const { config, secretHeaders } = await newConfig(deps, b);
    const checkpoint = await startCheckpoint(db, b.start_from);
    const signingSecret = newSigningSecret();
    const secrets: DestinationSecrets = { headers: secretHeaders, signing_secret: signingSecret };
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
    // Not the URL: a webhook URL often carries its own secret (Slack's do).
    deps.log.info({ destinationId: row.id, destination: row.name }, 'destination created');
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

  // Before /destinations/:id routes: `test` is no id.
  r.post('/destinations/test', async (req, res) => {
    const t = testUnsavedDestinationSchema.parse(req.body ?? {});
    const { config, secretHeaders } = await newConfig(deps, t.destination, 'destination.');
    // An unsaved destination has no secret yet: this one signs the test only, and is shown so the receiver can check it.
    const signingSecret = newSigningSecret();
    const result = await testSend(deps, config, { headers: secretHeaders, signing_secret: signingSecret }, t, 'destination.');
    res.json({ ...result, signing_secret: signingSecret });
  });

  r.post('/destinations/:id/test', async (req, res) => {
    const d = await destinationOr404(db, req.params.id);
    const t = testDestinationSchema.parse(req.body ?? {});
    res.json(await testSend(deps, d.config, openSecrets(deps, d), t));
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
    if (p.url !== undefined) checkUrl(deps, p.url);
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
