export { syncSchema } from './sync-schema';
export { cdcSource } from './cdc-source';
export { webhookEvents } from './webhook-events';
