export { syncSchema } from './sync-schema';
