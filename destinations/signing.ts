import crypto from 'node:crypto';

/**
 * Standard Webhooks (https://www.standardwebhooks.com) signing of outgoing destination requests, and the stable ids
 * that make a redelivery detectable: `webhook-id` is the same for the same change whenever it is sent (a retry, or
 * a resend after a crash), so a receiver can deduplicate on it.
 */

const SECRET_PREFIX = 'whsec_';

/** A new per-destination signing secret: `whsec_` + base64 of 32 random bytes (shown once, at create). */
export function newSigningSecret(): string {
  return SECRET_PREFIX + crypto.randomBytes(32).toString('base64');
}

/** The key bytes of a `whsec_` secret (the base64 after the prefix; a secret without the prefix is taken as base64 too). */
function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = Buffer.from(b64, 'base64');
  if (key.length === 0) throw new Error('the signing secret holds no key bytes');
  return key;
}

const sha256Hex32 = (text: string) => crypto.createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);

/**
 * The change's stable id: 'chg_' + the first 32 hex digits of sha256(`${table}\n${key}\n${version}\n${op}`).
 * `key` is the change log's key text (ChangeRow.key) as stored, so every reader of the same change gets the same id.
 */
export function changeId(c: { table: string; key: string; version: string | number | bigint; op: string }): string {
  return `chg_${sha256Hex32(`${c.table}\n${c.key}\n${String(c.version)}\n${c.op}`)}`;
}

/** A batched request's id: 'bat_' + the first 32 hex digits of sha256 of its change ids joined by '\n' (in order). */
export function batchId(ids: readonly string[]): string {
  return `bat_${sha256Hex32(ids.join('\n'))}`;
}

/**
 * The three Standard Webhooks headers: `webhook-id`, `webhook-timestamp` (seconds), and
 * `webhook-signature: v1,<base64 HMAC-SHA256(key, "${id}.${timestamp}.${body}")>`.
 * `body` is the exact request body text ('' for a request without one).
 */
export function signatureHeaders(secret: string, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const timestamp = String(Math.floor(timestampSeconds));
  const signature = crypto.createHmac('sha256', secretKey(secret)).update(`${id}.${timestamp}.${body}`, 'utf8').digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}
