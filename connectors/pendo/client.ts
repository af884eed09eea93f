import { ApiHttpError, classifyHttpFailure, HttpApi, pacerFor, rateFromEnv } from '../kit';
import { SourceError, SourceRefused } from '../types';
import { REGION_HOSTS, type PendoConfig } from './config';

/**
 * One paced HTTP client per (key, region): Pendo limits per integration key and answers each key only on the
 * host of its region. TRIBUTARY_PENDO_API_URL is a URL template whose `{host}` becomes the region's host
 * (`http://127.0.0.1:5555/{host}` sends requests to a local server); unset, `https://{host}`.
 */

/** Pendo documents no rate limit; a few requests per second keeps one key well clear of throttling. */
const DEFAULT_RPS = 5;

/**
 * Silence allowed before the first byte and between chunks: a sorted aggregation over a large subscription may
 * think for minutes before it answers, so more than the kit's 60 s (TRIBUTARY_API_TIMEOUT_MS still overrides).
 */
const DEFAULT_TIMEOUT_MS = 300_000;

function timeoutMs(): number {
  const v = Number(process.env.TRIBUTARY_API_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_TIMEOUT_MS;
}

export function baseUrl(region: PendoConfig['region']): string {
  const template = process.env.TRIBUTARY_PENDO_API_URL || 'https://{host}';
  return template.replace('{host}', REGION_HOSTS[region]);
}

const clients = new Map<string, HttpApi>();

export function pendoApi(config: PendoConfig): HttpApi {
  const url = baseUrl(config.region);
  const id = `${config.integration_key}\u0000${url}`;
  let api = clients.get(id);
  if (!api) {
    api = new HttpApi({
      baseUrl: url,
      headers: { 'x-pendo-integration-key': config.integration_key },
      pacer: pacerFor('pendo', config.integration_key, rateFromEnv('TRIBUTARY_PENDO_RPS', DEFAULT_RPS)),
      timeoutMs: timeoutMs(),
    });
    clients.set(id, api);
  }
  return api;
}

/** The aggregation endpoint refused a key without write access (a 403 there; the list endpoints still answer). */
export class AggregationRefused extends SourceRefused {}

export const WRITE_ACCESS_NEEDED =
  'Pendo refused the aggregation endpoint to this integration key: visitors and accounts need a key with "Allow Write Access" ' +
  'enabled (Pendo: Settings → Integrations → Integration Keys → edit the key)';

/**
 * Pendo's refusals in words a user can act on. 401 / 403: the key is wrong for this region (a key from another
 * region is the usual cause: each region is its own Pendo); a 403 on the aggregation endpoint: no write access.
 */
export function pendoError(err: unknown, config: PendoConfig, aggregation = false): unknown {
  if (!(err instanceof ApiHttpError)) return err;
  if (err.status === 403 && aggregation) return new AggregationRefused(WRITE_ACCESS_NEEDED, 'integration_key');
  if (err.status === 401 || err.status === 403) {
    return new SourceRefused(
      `Pendo rejected integration_key in region ${config.region} (${REGION_HOSTS[config.region]}): HTTP ${err.status}. ` +
        'A key from another region is the usual cause: each Pendo region only knows its own keys, so pick the region your ' +
        'subscription lives in (the host you log in to), or create a key under Settings → Integrations → Integration Keys.',
      'integration_key',
    );
  }
  return err;
}

/**
 * For setup calls (check, discover), whose failure is shown to the user as a 400: every failure that comes from
 * Pendo or the way to it, in words — the refusals above, any other HTTP status with Pendo's own text, and a
 * host that could not be reached (after the kit's retries) naming the region.
 */
export function setupError(err: unknown, config: PendoConfig, request: string, aggregation = false): unknown {
  const mapped = pendoError(err, config, aggregation);
  if (mapped instanceof SourceError) return mapped;
  if (err instanceof ApiHttpError) return new SourceError(`Pendo answered ${request} with HTTP ${err.status} in region ${config.region}${err.body ? `: ${err.body.slice(0, 300)}` : ''}`);
  if (classifyHttpFailure(err).kind === 'transient') return new SourceError(`Could not reach Pendo at ${baseUrl(config.region)} (region ${config.region}): ${(err as Error).message}`, 'region');
  return err;
}
