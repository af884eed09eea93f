import type { Connector } from './types';
import { filesConnector } from './files';
import { pendoConnector } from './pendo';
import { postgresConnector } from './postgres';
import { stripeConnector } from './stripe';

/** Every source type Tributary offers, keyed by its canonical `source_type`. */
export const connectors: Record<string, Connector<any>> = {
  [postgresConnector.spec.name]: postgresConnector,
  [stripeConnector.spec.name]: stripeConnector,
  [pendoConnector.spec.name]: pendoConnector,
  [filesConnector.spec.name]: filesConnector,
};

export function connectorFor(sourceType: string): Connector<any> | undefined {
  return Object.prototype.hasOwnProperty.call(connectors, sourceType) ? connectors[sourceType] : undefined;
}
