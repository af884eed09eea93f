import { z } from 'zod';
import { strictObject } from '../common/strict-object';
import { DESTINATION_METHODS } from '../destinations/types';
import { booleanParam } from './validation';

/**
 * Request and response shapes of /api/destinations (api/routes/destinations.ts). Every object refuses keys it
 * does not know, with the key it likely meant.
 */

export const HEALTH_STATES = ['healthy', 'degraded', 'disabled_temporarily', 'disabled'] as const;
export const CHANGE_OPERATIONS = ['insert', 'update', 'delete'] as const;

/**
 * Header names whose values are secret without being marked: credentials by name (Authorization, Cookie,
 * X-Api-Key, X-Auth-Token, anything with token, secret, password, api-key, auth, credential, signature or
 * session in it). `{ "value": …, "secret": false }` keeps such a header in clear; `"secret": true` seals any.
 */
export const SECRET_HEADER_NAME = /(authorization|cookie|token|secret|passw(or)?d|api[-_]?key|auth|credential|signature|session)/i;

/** Headers the platform sets itself: the Standard Webhooks signature and the transport's own. */
export const RESERVED_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-length', 'host', 'transfer-encoding', 'connection'];

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name is letters, digits and !#$%&\'*+.^_`|~- only')
  .refine((n) => !RESERVED_HEADERS.includes(n.toLowerCase()), { message: `the platform sets this header itself (${RESERVED_HEADERS.join(', ')})` });

// No CR/LF: a value may not smuggle in a header of its own.
const headerText = z.string().max(8192, 'a header value is at most 8192 characters').regex(/^[^\r\n]*$/, 'a header value may not contain a line break');

export const headerValueSchema = z.union(
  [headerText, strictObject({ value: headerText, secret: z.boolean().optional() }, 'a header is a string or { "value": …, "secret": true }')],
  'a header is a string or { "value": …, "secret": true }',
);

export const headersSchema = z
  .record(headerName, headerValueSchema, {
    // A bad name says what is wrong with it (zod's own message for a key is "Invalid key in record").
    error: (iss) => (iss.code === 'invalid_key' ? (iss.issues as { message: string }[] | undefined)?.[0]?.message : iss.code === 'invalid_type' ? 'headers must be an object of header names to values' : undefined),
  })
  .refine((h) => new Set(Object.keys(h).map((k) => k.toLowerCase())).size === Object.keys(h).length, { message: 'a header is given twice (names are case-insensitive)' });

const url = z
  .string('url is required')
  .trim()
  .max(2048, 'url is at most 2048 characters')
  .refine((u) => {
    try {
      const p = new URL(u);
      return (p.protocol === 'http:' || p.protocol === 'https:') && p.hostname.length > 0;
    } catch {
      return false;
    }
  }, 'url must be an http:// or https:// URL')
  .refine((u) => {
    try {
      return !new URL(u).username && !new URL(u).password;
    } catch {
      return true;
    }
  }, 'url must not carry credentials: put them in a secret header (Authorization)');

export const filtersSchema = strictObject(
  {
    source_id: z.uuid('source_id must be a source id (a UUID)').optional(),
    tables: z.array(z.string().min(1, 'a table name is required'), 'tables must be a list of warehouse table names').max(500).optional(),
    operations: z.array(z.enum(CHANGE_OPERATIONS, `an operation is one of ${CHANGE_OPERATIONS.join(', ')}`)).optional(),
    expression: z.string().trim().min(1, 'expression must not be empty (leave it out to match every row)').max(10_000, 'expression is at most 10000 characters').optional(),
  },
  'filters must be an object',
);

/** `now` (the default): changes landing from now on. An ISO time: replay from the first change landed at or after it. */
export const startFromSchema = z.union([z.literal('now'), z.iso.datetime({ offset: true, message: 'start_from is "now" or an ISO 8601 time, e.g. 2026-01-31T12:00:00Z' })], 'start_from is "now" or an ISO 8601 time, e.g. 2026-01-31T12:00:00Z');

const destinationFields = {
  name: z.string('name is required').trim().min(1, 'name is required').max(200, 'name is at most 200 characters'),
  url,
  method: z.enum(DESTINATION_METHODS, `method is one of ${DESTINATION_METHODS.join(', ')}`),
  headers: headersSchema,
  /** A json-e template (destinations/template.ts); checked by the route, which names the path inside it. */
  body: z.unknown().describe('a json-e template rendered per change; absent: the change itself'),
  filters: filtersSchema,
  batch_size: z.number('batch_size must be a number').int('batch_size must be a whole number').min(1, 'batch_size is at least 1').max(1000, 'batch_size is at most 1000'),
  timeout_ms: z.number('timeout_ms must be a number').int('timeout_ms must be a whole number').min(100, 'timeout_ms is at least 100').max(120_000, 'timeout_ms is at most 120000'),
  enabled: z.boolean('enabled must be true or false'),
  start_from: startFromSchema,
};

export const createDestinationSchema = strictObject(
  {
    type: z.literal('webhook', 'type must be "webhook" (the only destination type so far)'),
    name: destinationFields.name,
    url: destinationFields.url,
    method: destinationFields.method.default('POST'),
    headers: destinationFields.headers.default({}),
    body: destinationFields.body.optional(),
    filters: destinationFields.filters.default({}),
    batch_size: destinationFields.batch_size.default(1),
    timeout_ms: destinationFields.timeout_ms.default(10_000),
    enabled: destinationFields.enabled.default(true),
    start_from: destinationFields.start_from.default('now'),
  },
  'the body must be a destination: { type, name, url, … }',
);
export type CreateDestination = z.infer<typeof createDestinationSchema>;

/** PATCH: any field but type; `body: null` removes the template; a secret header given as MASK keeps its value. */
export const patchDestinationSchema = strictObject(
  {
    type: z.literal('webhook', 'type cannot change').optional(),
    name: destinationFields.name.optional(),
    url: destinationFields.url.optional(),
    method: destinationFields.method.optional(),
    headers: destinationFields.headers.optional(),
    body: destinationFields.body.optional(),
    filters: destinationFields.filters.optional(),
    batch_size: destinationFields.batch_size.optional(),
    timeout_ms: destinationFields.timeout_ms.optional(),
    enabled: destinationFields.enabled.optional(),
    start_from: destinationFields.start_from.optional().describe('moves the checkpoint: replay from this time (or skip to now)'),
  },
  'the body must be an object of the fields to change',
).refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });
export type PatchDestination = z.infer<typeof patchDestinationSchema>;

export const listDestinationsQuerySchema = strictObject({
  enabled: booleanParam('enabled').optional(),
  health_state: z.enum(HEALTH_STATES, `health_state is one of ${HEALTH_STATES.join(', ')}`).optional(),
  table: z.string().min(1).optional().describe('destinations that receive changes of this warehouse table'),
  source_id: z.uuid('source_id must be a UUID').optional(),
});

/** What a test request renders from: a recent change of a table, or a row given here. */
const testSampleFields = {
  table: z.string().min(1, 'table must be a warehouse table name').optional().describe('render from the latest change of this table (default: the first table of the filters)'),
  row: z.record(z.string(), z.unknown(), 'row must be an object of column values').optional().describe('render from this row (as an insert) instead of a change from the log'),
  op: z.enum(CHANGE_OPERATIONS).optional().describe('with row: the operation (default insert)'),
};

export const testDestinationSchema = strictObject(testSampleFields, 'the body must be an object: { table?, row?, op? }');

/** POST /api/destinations/test: an unsaved configuration (as for create) and what to render from. */
export const testUnsavedDestinationSchema = strictObject(
  {
    destination: createDestinationSchema.omit({ start_from: true }).extend({ name: destinationFields.name.default('unsaved destination') }),
    ...testSampleFields,
  },
  'the body must be { destination: { type, url, … }, table?, row?, op? }',
);

// Responses.
const timestamp = z.string().describe('ISO 8601 timestamp, UTC');

export const destinationResponse = z
  .object({
    id: z.uuid(),
    name: z.string(),
    type: z.literal('webhook'),
    url: z.string(),
    method: z.enum(DESTINATION_METHODS),
    headers: z.record(z.string(), z.string()).describe('secret header values shown as ********'),
    secret_headers: z.array(z.string()).describe('names of the headers whose values are sealed'),
    body: z.unknown().optional(),
    filters: z.object({ source_id: z.string().optional(), tables: z.array(z.string()).optional(), operations: z.array(z.enum(CHANGE_OPERATIONS)).optional(), expression: z.string().optional() }),
    batch_size: z.number().int(),
    timeout_ms: z.number().int(),
    enabled: z.boolean(),
    health_state: z.enum(HEALTH_STATES),
    disabled_until: timestamp.nullable(),
    latest_error: z.string().nullable(),
    signing_secret: z.string().describe('the Standard Webhooks whsec_ secret: in clear only in the create answer, ******** afterwards'),
    checkpoint: z.object({ batch: z.string(), seq: z.number().int() }).describe('the last change delivered or skipped, in the change log order'),
    lag: z
      .object({
        changes_after_checkpoint: z.number().int().describe('changes of its tables and operations after the checkpoint (before the expression filters them)'),
        oldest_after_checkpoint_at: timestamp.nullable().describe('when the oldest of them landed'),
      })
      .nullable(),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({ id: 'Destination' });

export const deleteDestinationResult = z.object({ id: z.uuid(), deleted: z.literal(true), delivery_terminated: z.boolean() }).meta({ id: 'DeleteDestinationResult' });

export const destinationTestResult = z
  .object({
    change: z.object({ id: z.string(), table: z.string(), op: z.enum(CHANGE_OPERATIONS), from: z.enum(['change_log', 'given_row']) }),
    matches_filters: z.boolean().nullable().describe('whether the filters would let this change through (null: not evaluated)'),
    request: z.object({ url: z.string(), method: z.enum(DESTINATION_METHODS), headers: z.record(z.string(), z.string()).describe('secret headers masked'), body: z.string().nullable() }),
    response: z
      .object({ status: z.number().int(), headers: z.record(z.string(), z.string()), body: z.string().describe('the first 4 KiB'), truncated: z.boolean() })
      .nullable(),
    error: z.string().nullable().describe('a network error, a refused address or a timeout'),
    duration_ms: z.number(),
    signing_secret: z.string().optional().describe('unsaved configuration only: the one-off whsec_ secret this test was signed with'),
  })
  .meta({ id: 'DestinationTestResult' });
