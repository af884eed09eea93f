/**
 * One replication slot and one publication per source, named from its id so they are found again
 * after any restart and recognisable in pg_replication_slots: `tributary_<12 hex>`.
 */
const idHex = (sourceId: string) => sourceId.replace(/-/g, '').toLowerCase().slice(0, 12);

export const cdcSlotName = (sourceId: string) => `tributary_${idHex(sourceId)}`;
export const cdcPublicationName = (sourceId: string) => `tributary_pub_${idHex(sourceId)}`;
