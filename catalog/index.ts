import type { ConnectorSpec } from '../connectors/types';
import { secretFieldNames } from '../connectors/types';
import { migrate } from './migrate';
import { openCatalogDb, type CatalogDb } from './db';
import { MASK, SecretBox } from './secrets';
import type { SourceRow } from './sources';

/** The catalog: its database plus the key that seals credentials stored in it. */
export interface Catalog {
  db: CatalogDb;
  secrets: SecretBox;
}

export async function openCatalog(opts: { databaseUrl?: string; dataDir: string; secretKey?: string }): Promise<Catalog> {
  const secrets = SecretBox.fromConfig(opts);
  const db = await openCatalogDb(opts);
  await migrate(db);
  return { db, secrets };
}

/** Splits a connection payload into what may be stored in clear and the sealed secret fields. */
export function sealConfig(
  box: SecretBox,
  spec: ConnectorSpec,
  config: Record<string, unknown>,
): { config: Record<string, unknown>; secrets: string | null } {
  const secretNames = new Set(secretFieldNames(spec));
  const clear: Record<string, unknown> = {};
  const secret: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) (secretNames.has(k) ? secret : clear)[k] = v;
  return { config: clear, secrets: Object.keys(secret).length ? box.seal(secret) : null };
}

/** The full connection config of a stored source, decrypted: only activities and the API use it. */
export function unsealConfig(box: SecretBox, source: SourceRow): Record<string, unknown> {
  return { ...source.config, ...(source.secrets ? box.open<Record<string, unknown>>(source.secrets) : {}) };
}

/** The config as the API shows it: secret fields present but masked. */
export function maskedConfig(spec: ConnectorSpec | undefined, source: SourceRow): Record<string, unknown> {
  const out: Record<string, unknown> = { ...source.config };
  for (const name of spec ? secretFieldNames(spec) : []) if (source.secrets) out[name] = MASK;
  return out;
}
