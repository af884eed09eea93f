import type { Client } from '@temporalio/client';
import type { Catalog } from '../catalog';
import type { OutgoingPolicy } from '../destinations/outgoing-network';
import type { Logger } from '../platform/logger';
import type { Warehouse } from '../warehouse/client';

/** What the API's handlers work with. */
export interface ApiDeps {
  catalog: Catalog;
  warehouse: Warehouse;
  temporal: Client;
  taskQueue: string;
  apiToken: string;
  /** Where the source reaches this API from outside (TRIBUTARY_PUBLIC_URL): webhook URLs start with it. */
  publicUrl: string;
  log: Logger;
  /** Where destinations may send (TRIBUTARY_DESTINATIONS_ALLOW_*); absent: read from the environment. */
  outgoingNetwork?: OutgoingPolicy;
  /** Where the Temporal UI is (the dev server's, or TEMPORAL_UI_URL), for links to a run; GET /api/platform-info. */
  temporalUi?: { url: string | null; namespace: string };
  /** embedded or remote, per part, for /health. */
  modes: { temporal: 'embedded' | 'remote'; warehouse: 'embedded' | 'remote'; catalog: 'embedded' | 'remote' };
}
