export { syncSchema } from './sync-schema';
export { cdcSource } from './cdc-source';
export { webhookEvents } from './webhook-events';
export { changePrefix, deleteSource, resetSchema, sweepStaging } from './source-admin';
export { deliverDestination } from './deliver-destination';
export { watchAlerts } from './watch-alerts';
