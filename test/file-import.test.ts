import { deleteFilesSql, FILE_COLUMN, fileVersion, importFilesSql, listFilesSql, slices } from '../warehouse/file-import';
import { linkedDatabase, linkedTableDdl, unlinkDdl } from '../connectors/files/sql';
import type { FileTableReader } from '../connectors/types';

const reader = (hasEtag: boolean): FileTableReader => ({
  from: (format) => `s3(\`nc\`, url = 'http://h/b/x/*.csv', format = '${format ?? 'CSVWithNames'}')`,
  hasEtag,
  settings: { format_csv_delimiter: ';' },
});

describe('imported files: the SQL and the slicing', () => {
  test('a file is told apart by its ETag, else by size and mtime', () => {
    expect(fileVersion({ etag: '"abc"', size: '10', mtime: '5' })).toBe('etag:abc');
    expect(fileVersion({ etag: '', size: '10', mtime: '5' })).toBe('size:10;mtime:5');
    expect(listFilesSql(reader(true))).toContain("_etag AS etag");
    expect(listFilesSql(reader(false))).toContain("'' AS etag");
    expect(listFilesSql(reader(true))).toContain("format = 'One'");
  });

  test('an import names its columns by source name, tags the file, never deduplicates, and quotes the paths', () => {
    const cols = [{ name: 'item_id', sourceName: 'Item Id', type: 'Nullable(Int64)', sourceType: 'Int64', nullable: true }];
    const sql = importFilesSql('db', 't', cols, reader(true), 7n, ["x/it's.csv"]);
    expect(sql).toBe(
      "INSERT INTO `db`.`t` (`item_id`, `_tributary_file`, _tributary_version) SELECT `Item Id`, `_path`, 7 FROM s3(`nc`, url = 'http://h/b/x/*.csv', format = 'CSVWithNames')" +
        " WHERE _path IN ('x/it\\'s.csv') SETTINGS format_csv_delimiter = ';', insert_deduplicate = 0",
    );
    // The file column given twice (it is in a live table's columns) is selected once.
    expect(importFilesSql('db', 't', [...cols, FILE_COLUMN], reader(true), 7n).match(/_tributary_file/g)).toHaveLength(1);
    expect(deleteFilesSql('db', 't', ["a'b"])).toBe("DELETE FROM `db`.`t` WHERE `_tributary_file` IN ('a\\'b') SETTINGS lightweight_deletes_sync = 2");
  });

  test('pending files are cut into slices by count and by bytes', () => {
    const f = (path: string, size: number) => ({ path, version: 'v', size });
    expect(slices([f('a', 1), f('b', 1), f('c', 1)], 2, 100).map((s) => s.map((x) => x.path))).toEqual([['a', 'b'], ['c']]);
    expect(slices([f('a', 60), f('b', 60), f('c', 10)], 10, 100).map((s) => s.map((x) => x.path))).toEqual([['a'], ['b', 'c']]);
    // A file bigger than the limit is a slice of its own.
    expect(slices([f('a', 500)], 10, 100)).toHaveLength(1);
    expect(slices([], 10, 100)).toEqual([]);
  });
});

describe('linked tables on a shared server', () => {
  test("each tenant's linked tables live in a database of its own, and every statement names it or the tenant's", () => {
    const engine = "S3(`tributary_files_x`, url = 'http://h/b/x/*.csv', format = 'CSVWithNames', compression_method = 'auto')";
    const of = (db: string) => [...linkedTableDdl(db, 'lake_live', 'aaaa-bbbb', [{ name: 'id', type: 'Int64' }], engine), ...unlinkDdl(db, 'lake_live', 'aaaa-bbbb')];
    for (const stmt of of('tenant_a')) expect(stmt).toMatch(/`(_tributary_linked_)?tenant_a`/);
    // Two tenants with the same schema id (two catalogs) touch no database in common.
    const dbs = (db: string) => new Set(of(db).flatMap((s) => [...s.matchAll(/`([^`]+)`\./g)].map((m) => m[1])));
    expect([...dbs('tenant_a')].filter((d) => dbs('tenant_b').has(d))).toEqual([]);
    expect(linkedDatabase('tenant_a')).toBe('_tributary_linked_tenant_a');
  });
});
