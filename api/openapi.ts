import { platformInfoQuerySchema } from './routes/platform-info';
import { z } from 'zod';
import { connectors } from '../connectors/registry';
import * as R from './response-schemas';
import { bulkActionSchema, patchSchemaSchema, schemasQuerySchema } from './schema-requests';
import {
  connectionCheckSchema,
  createSourceSchema,
  deleteSourceQuerySchema,
  jobsQuerySchema,
  patchSourceSchema,
  querySchema,
  syncAllSchema,
} from './validation';
import { cdcCheckSchema, cdcLagHistoryQuerySchema } from './routes/sources';
import { signingSecretSchema } from './routes/webhooks';
import * as D from './destination-schemas';
import { alertsQuerySchema, alertsResult } from './routes/alerts';
import { destinationLogsQuerySchema, destinationLogsResult, destinationMetricsQuerySchema, destinationMetricsResult } from './routes/destination-observability';

/**
 * GET /api/openapi.json: an OpenAPI 3.1 document generated from the zod schemas the routes validate
 * with and the response schemas the tests check answers against. Only the route table is written here.
 */

type Json = Record<string, unknown>;
type Io = 'input' | 'output';

interface Route {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  body?: z.ZodType | Json;
  query?: z.ZodObject;
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  public?: boolean;
}

/** Converts a zod schema; schemas with an id move to components and are referenced from there. */
function converter(components: Record<string, Json>) {
  return (schema: z.ZodType, io: Io): Json => {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
    delete json.$schema;
    const defs = (json.$defs ?? {}) as Record<string, Json>;
    delete json.$defs;
    const relink = (j: Json) => JSON.parse(JSON.stringify(j).replaceAll('"#/$defs/', '"#/components/schemas/')) as Json;
    for (const [id, def] of Object.entries(defs)) components[id] = relink(def);
    return relink(json);
  };
}

/** A connector's connection fields as a zod object, so they can be combined with a route's own keys. */
const connectionShape = (c: (typeof connectors)[string]) => (c.configSchema as unknown as z.ZodObject).shape;
const oneOrOneOf = (schemas: Json[]): Json => (schemas.length === 1 ? schemas[0] : { oneOf: schemas });

/**
 * The create body's payload: per source type, its connection fields and schemas[] in one closed object
 * (an allOf of two closed objects would refuse every key one of them lacks).
 */
function createSourceBody(convert: ReturnType<typeof converter>): Json {
  const body = convert(createSourceSchema, 'input');
  const { schemas } = createSourceSchema.shape.payload.shape;
  const props = body.properties as Record<string, Json>;
  props.payload = oneOrOneOf(Object.values(connectors).map((c) => convert(z.strictObject({ ...connectionShape(c), schemas }), 'input')));
  return body;
}

/** The flat `{ source_type, …connection fields, …extra }` of the connection checks, one closed object per type. */
function connectionCheckBody(convert: ReturnType<typeof converter>, extra: z.core.$ZodLooseShape = {}): Json {
  return oneOrOneOf(
    Object.values(connectors).map((c) => convert(z.strictObject({ source_type: z.literal(c.spec.name), ...connectionShape(c), ...extra }), 'input')),
  );
}

/** PATCH /api/sources/:id: any of the connection fields of the source's type. */
function patchSourceBody(convert: ReturnType<typeof converter>): Json {
  const body = convert(patchSourceSchema, 'input');
  const props = body.properties as Record<string, Json>;
  const perType = Object.values(connectors).map((c) => convert(z.strictObject(connectionShape(c)).partial(), 'input'));
  // anyOf: with every field optional, a payload of fields two types share fits both.
  props.payload = perType.length === 1 ? perType[0] : { anyOf: perType };
  return body;
}

const idParam = (what: string) => ({ name: 'id', in: 'path', required: true, description: `the ${what} id`, schema: { type: 'string', format: 'uuid' } });

export function buildOpenApiDocument(): Json {
  const components: Record<string, Json> = {};
  const convert = converter(components);
  const err = (description: string) => ({ description, schema: R.errorResponse });
  const routes: Route[] = [
    { method: 'get', path: '/health', summary: 'Liveness of each part, with its mode', public: true, responses: { 200: { description: 'all parts answer', schema: R.healthResult }, 503: { description: 'a part is down', schema: R.healthResult } } },
    { method: 'get', path: '/api/openapi.json', summary: 'This document', public: true, responses: { 200: { description: 'OpenAPI 3.1' } } },
    { method: 'get', path: '/api/source-types', summary: 'The wizard: each source type and the fields it needs', responses: { 200: { description: 'keyed by source_type', schema: R.sourceTypesResult } } },
    { method: 'post', path: '/api/sources/db-schema', summary: 'Check credentials live and list the tables with their sync options', body: connectionCheckBody(convert), responses: { 200: { description: 'one entry per table', schema: z.array(R.discoveredTableResponse) }, 400: err("bad input, or the source's own error message") } },
    { method: 'post', path: '/api/sources/check-cdc-prerequisites', summary: 'Postgres CDC pre-flight', body: connectionCheckBody(convert, { tables: cdcCheckSchema.shape.tables, schemas: cdcCheckSchema.shape.schemas }), responses: { 200: { description: 'what is missing, each with its fix', schema: R.cdcCheckResult }, 400: err('bad input or credentials') } },
    { method: 'post', path: '/api/sources', summary: 'Create a source with its schemas; first syncs start at once', body: createSourceBody(convert), responses: { 201: { description: 'created', schema: R.createdSourceResponse }, 400: err('a rule is broken; nothing stored'), 409: err('prefix taken') } },
    { method: 'get', path: '/api/sources', summary: 'Sources with status, last successful run and schema counts', responses: { 200: { description: 'sources', schema: R.listOf(R.sourceResponse) } } },
    { method: 'post', path: '/api/sources/{id}/cdc/pause', summary: 'Pause the CDC mirror (the slot then retains WAL)', responses: { 200: { description: 'paused, with the WAL warning', schema: R.cdcActionResult }, 404: err('no such source'), 409: err('the source has no CDC mirror') } },
    { method: 'post', path: '/api/sources/{id}/cdc/resume', summary: 'Resume the CDC mirror from its checkpoint', responses: { 200: { description: 'resumed', schema: R.cdcActionResult }, 404: err('no such source'), 409: err('the source has no CDC mirror') } },
    { method: 'post', path: '/api/sources/{id}/cdc/resync', summary: 'Start the CDC mirror over: new slot, fresh snapshots (the way out of a lost slot)', responses: { 202: { description: 'resync started', schema: R.cdcActionResult }, 404: err('no such source'), 409: err('the source has no CDC mirror') } },
    { method: 'get', path: '/api/sources/{id}/cdc/lag-history', summary: "The CDC slot's lag measurements of the last hours (kept 24 h), oldest first; empty without CDC", query: cdcLagHistoryQuerySchema, responses: { 200: { description: 'lag samples', schema: R.cdcLagHistoryResult }, 400: err('bad query parameter'), 404: err('no such source') } },
    { method: 'get', path: '/api/sources/{id}', summary: 'One source with its schemas', responses: { 200: { description: 'the source', schema: R.sourceResponse }, 404: err('no such source') } },
    { method: 'patch', path: '/api/sources/{id}', summary: 'Change connection fields (checked live) or the prefix (renames tables)', body: patchSourceBody(convert), responses: { 200: { description: 'the source', schema: R.sourceResponse }, 202: { description: 'the prefix change is still running: the operation that leads to it', schema: R.sourceResponse.extend({ operation: R.pendingOperation }) }, 400: err('bad input or credentials'), 404: err('no such source'), 409: err('prefix or table names taken, syncs running, or another change of the source in progress') } },
    { method: 'delete', path: '/api/sources/{id}', summary: 'Delete a source: schedules, runs in flight, catalog rows; tables only with delete_data=true', query: deleteSourceQuerySchema, responses: { 200: { description: 'deleted', schema: R.deleteSourceResult }, 202: { description: 'the deletion is still running', schema: R.deleteSourcePending }, 404: err('no such source'), 409: err('another change of the source in progress') } },
    { method: 'post', path: '/api/sources/{id}/refresh-schemas', summary: 'Pull new schemas: new tables are added disabled; nothing syncs', responses: { 200: { description: 'tables added', schema: R.refreshResult }, 400: err("the source's error"), 404: err('no such source') } },
    { method: 'post', path: '/api/sources/{id}/sync-all', summary: 'Sync every enabled schema that is not already syncing', body: syncAllSchema, responses: { 202: { description: 'started and skipped, with reasons', schema: R.syncAllResult }, 400: err('confirm missing'), 404: err('no such source') } },
    { method: 'post', path: '/api/sources/{id}/webhook', summary: "Register the webhook endpoint at the source (Stripe), subscribed to the webhook tables' events; never a second one", responses: { 200: { description: 'success, or why not (e.g. the permission the key lacks)', schema: R.webhookRegisterResult }, 400: err('the source type has no webhooks'), 404: err('no such source') } },
    { method: 'post', path: '/api/sources/{id}/webhook-inputs', summary: 'The signing secret of an endpoint created by hand: enables the intake', body: signingSecretSchema, responses: { 200: { description: 'the webhook info', schema: R.webhookInfoResult }, 400: err('not a whsec_ secret, or no webhook support'), 404: err('no such source') } },
    { method: 'get', path: '/api/sources/{id}/webhook-info', summary: "The webhook endpoint: Tributary's intake and the source's view of it", responses: { 200: { description: 'webhook info', schema: R.webhookInfoResult }, 404: err('no such source') } },
    { method: 'post', path: '/webhooks/stripe/{id}', summary: 'Webhook intake (public; the Stripe-Signature header authenticates it): verified, stored, handed to the source workflow, then 200', public: true, body: { type: 'object', description: 'the event exactly as Stripe sends it (verified on its raw bytes)' }, responses: { 200: { description: 'accepted (or ignored: no webhook table for it)', schema: R.webhookReceipt }, 400: err('missing, forged or expired signature'), 404: err('no such source'), 503: err('no signing secret yet: the sender retries') } },
    { method: 'get', path: '/api/sources/{id}/schemas', summary: "The source's schemas, filtered and sorted", query: schemasQuerySchema, responses: { 200: { description: 'schemas', schema: R.listOf(R.schemaResponse) }, 400: err('bad query parameter'), 404: err('no such source') } },
    { method: 'patch', path: '/api/schemas/{id}', summary: 'Enable/disable a schema or change its sync settings', body: patchSchemaSchema, responses: { 200: { description: 'the schema and any warnings', schema: R.schemaWithWarnings }, 202: { description: 'the rebuild is still running', schema: R.schemaWithWarnings.extend({ operation: R.pendingOperation }) }, 400: err('a rule is broken'), 404: err('no such schema'), 409: err('primary key locked, the table is gone, or another change of the table in progress') } },
    { method: 'post', path: '/api/schemas/bulk', summary: 'disable, set_frequency, sync_now, delete_tables, delete_and_resync (no bulk enable)', body: bulkActionSchema, responses: { 200: { description: 'applied and skipped, with reasons', schema: R.bulkResult }, 400: err('bad input or confirm missing'), 404: err('a selected schema does not exist') } },
    { method: 'post', path: '/api/schemas/{id}/sync', summary: 'Sync now', responses: { 202: { description: 'triggered', schema: R.syncTriggered }, 404: err('no such schema'), 409: err('disabled, not configured, or a run in flight') } },
    { method: 'post', path: '/api/schemas/{id}/refresh-schema', summary: "Linked file tables: infer the files' columns again (type overrides kept)", responses: { 200: { description: 'the schema with its columns', schema: R.schemaResponse }, 400: err("the storage's error"), 404: err('no such schema'), 409: err('not a linked table') } },
    { method: 'get', path: '/api/schemas/{id}/linked-stats', summary: 'Linked file tables: files matched, their size, and the rows the engine counts', responses: { 200: { description: 'what the pattern matches now', schema: R.linkedStatsResult }, 400: err("the storage's error"), 404: err('no such schema'), 409: err('not a linked table') } },
    { method: 'get', path: '/api/platform-info', query: platformInfoQuerySchema, summary: 'Where a run opens in the Temporal UI (its URL and namespace), for clients such as the console', responses: { 200: { description: 'links', schema: R.platformInfoResult }, 400: err('unknown query parameter') } },
    { method: 'get', path: '/api/jobs', summary: 'Sync runs, newest first', query: jobsQuerySchema, responses: { 200: { description: 'jobs', schema: R.listOf(R.jobResponse) }, 400: err('bad query parameter') } },
    { method: 'get', path: '/api/alerts', summary: 'Alerts, one per incident (raised once, cleared when the condition stops), newest first', query: alertsQuerySchema, responses: { 200: { description: 'alerts', schema: alertsResult }, 400: err('bad query parameter') } },
    { method: 'post', path: '/api/query', summary: 'Read-only SQL over the warehouse', body: querySchema, responses: { 200: { description: 'rows', schema: R.queryResult }, 400: err('bad or forbidden SQL') } },
    { method: 'post', path: '/api/destinations', summary: 'Create a webhook destination; its delivery starts at once. The whsec_ signing secret is shown in this answer only', body: D.createDestinationSchema, responses: { 201: { description: 'created, with the signing secret in clear', schema: D.destinationResponse }, 400: err('bad input: the field, the path inside the template, or where the filter expression is wrong') } },
    { method: 'get', path: '/api/destinations', summary: 'Destinations with health, checkpoint and lag; secrets masked', query: D.listDestinationsQuerySchema, responses: { 200: { description: 'destinations', schema: R.listOf(D.destinationResponse) }, 400: err('bad query parameter') } },
    { method: 'get', path: '/api/destinations/{id}', summary: 'One destination (secrets masked)', responses: { 200: { description: 'the destination', schema: D.destinationResponse }, 404: err('no such destination') } },
    { method: 'patch', path: '/api/destinations/{id}', summary: 'Change any field; an edit (or enabling it again) makes a stopped destination healthy; start_from moves the checkpoint', body: D.patchDestinationSchema, responses: { 200: { description: 'the destination', schema: D.destinationResponse }, 400: err('bad input'), 404: err('no such destination') } },
    { method: 'post', path: '/api/destinations/{id}/test', summary: 'Send one test request rendered from the latest change of a table (or a given row); answers the request (secrets masked), the response and the duration. Not counted in metrics', body: D.testDestinationSchema, responses: { 200: { description: 'what was sent and what came back (or the network error)', schema: D.destinationTestResult }, 400: err('bad input, no change to render from, or the template failed on it'), 404: err('no such destination') } },
    { method: 'post', path: '/api/destinations/test', summary: 'The same test for an unsaved configuration (signed with a one-off secret shown in the answer)', body: D.testUnsavedDestinationSchema, responses: { 200: { description: 'what was sent and what came back (or the network error)', schema: D.destinationTestResult }, 400: err('bad input, no change to render from, or the template failed on it') } },
    { method: 'delete', path: '/api/destinations/{id}', summary: 'Delete a destination and stop its delivery', responses: { 200: { description: 'deleted', schema: D.deleteDestinationResult }, 404: err('no such destination') } },
    { method: 'get', path: '/api/destinations/{id}/metrics', summary: "A destination's counts per time bucket (succeeded, failed, filtered, retried, disabled, rejected), its health and lag (the oldest undelivered change)", query: destinationMetricsQuerySchema, responses: { 200: { description: 'metrics', schema: destinationMetricsResult }, 400: err('bad query parameter'), 404: err('no such destination') } },
    { method: 'get', path: '/api/destinations/{id}/logs', summary: "A destination's log, newest first: each attempt (status, duration, error, truncated response) and each change of health", query: destinationLogsQuerySchema, responses: { 200: { description: 'log rows', schema: destinationLogsResult }, 400: err('bad query parameter'), 404: err('no such destination') } },
  ];

  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    const parameters: Json[] = [];
    if (route.path.includes('{id}')) parameters.push(idParam(route.path.startsWith('/api/schemas') ? 'schema' : route.path.startsWith('/api/destinations') ? 'destination' : 'source'));
    if (route.query) {
      const q = convert(route.query, 'input');
      const required = new Set((q.required as string[] | undefined) ?? []);
      for (const [name, schema] of Object.entries((q.properties ?? {}) as Record<string, Json>)) {
        parameters.push({ name, in: 'query', required: required.has(name), schema });
      }
    }
    const responses: Record<string, Json> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      responses[status] = { description: r.description, ...(r.schema ? { content: { 'application/json': { schema: convert(r.schema, 'output') } } } : {}) };
    }
    if (!route.public) responses['401'] = { description: 'missing or invalid token', content: { 'application/json': { schema: convert(R.errorResponse, 'output') } } };
    const body = route.body instanceof z.ZodType ? convert(route.body, 'input') : route.body;
    (paths[route.path] ??= {})[route.method] = {
      summary: route.summary,
      operationId: `${route.method}${route.path.replace(/[{}]/g, '').replace(/[^a-zA-Z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      ...(route.public ? { security: [] } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
      responses,
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Tributary API',
      version: '0.1.0',
      description: 'Sources → ClickHouse through Temporal workflows. Errors are always { error, message, details: [{ field, message }] }.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: { schemas: components, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  };
}
