import type { FileTableReader } from '../types';
import type { FilesConfig, FilesTable } from './config';
import { formatSettings, readerExpression, type ReaderOptions } from './sql';

/** A Files table as imports read it (activities/files-import.ts): its reader expression, in any format. */
export function importReader(config: FilesConfig, table: FilesTable, opts: ReaderOptions): FileTableReader {
  return {
    from: (format) => readerExpression(config, table, { ...opts, engineFormat: format }),
    // A local folder's file() has no `_etag`.
    hasEtag: config.provider !== 'local',
    settings: formatSettings(table),
  };
}
