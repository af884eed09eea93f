import type { CdcCapability } from '../types';
import { slotStatus, prepareMirror } from './cdc-mirror';
import { cdcPublicationName, cdcSlotName } from './cdc-names';
import { startStream } from './cdc-stream';
import type { PostgresConfig } from './config';
import { listColumns } from './catalog-queries';
import { withConnection } from './connection';
import { SourceError } from '../types';
import { mapColumns } from './types';

/** Postgres change data capture: one pgoutput slot and one publication per source. */
export const postgresCdc: CdcCapability<PostgresConfig> = {
  prepare: prepareMirror,
  slotStatus,
  stream: (config, opts) =>
    startStream(config, {
      slot: cdcSlotName(opts.sourceId),
      publication: cdcPublicationName(opts.sourceId),
      startLsn: opts.startLsn,
      primaryKey: opts.primaryKey,
      onEvent: opts.onEvent,
      describe: async (table) => {
        const cols = (await withConnection(config, (c) => listColumns(c, config.schema))).get(table);
        if (!cols) throw new SourceError(`table "${config.schema}"."${table}" does not exist`);
        return mapColumns(cols);
      },
    }),
};
