import { quoteIdent, type Warehouse } from './client';
import { rawColumnName, type WarehouseColumn } from './columns';

/**
 * Keeps a live table's columns in step with its source between incremental runs: added columns are
 * added, dropped ones stay (filling with NULL) and are reported, and a changed type is widened when
 * every old value fits the new type — otherwise the run fails saying what changed and how to resync.
 */
export interface EvolutionReport {
  added: string[];
  missingAtSource: string[];
  widened: string[];
}

export class IncompatibleSchemaChange extends Error {}

const INT_ORDER = ['Int8', 'Int16', 'Int32', 'Int64', 'Int128', 'Int256'];
const unwrapNullable = (t: string) => /^Nullable\((.*)\)$/.exec(t)?.[1] ?? t;

/** True when every value of `from` is exactly a value of `to`. */
export function isSafeWidening(from: string, to: string): boolean {
  if (from === to) return true;
  const f = unwrapNullable(from);
  const t = unwrapNullable(to);
  if (from.startsWith('Nullable(') && !to.startsWith('Nullable(')) return false;
  if (f === t) return true; // NOT NULL → Nullable
  const fi = INT_ORDER.indexOf(f);
  const ti = INT_ORDER.indexOf(t);
  if (fi >= 0 && ti >= 0) return ti >= fi;
  if (f === 'Float32' && t === 'Float64') return true;
  const fd = /^Decimal\((\d+), (\d+)\)$/.exec(f);
  const td = /^Decimal\((\d+), (\d+)\)$/.exec(t);
  if (fd && td) return Number(td[2]) >= Number(fd[2]) && Number(td[1]) - Number(td[2]) >= Number(fd[1]) - Number(fd[2]);
  return false;
}

export interface ExistingColumn {
  name: string;
  type: string;
  default_kind: string;
}

/** A live table's columns; none when the table does not exist (one query answers both). */
export function tableColumns(wh: Warehouse, table: string): Promise<ExistingColumn[]> {
  return wh.queryRows<ExistingColumn>('SELECT name, type, default_kind FROM system.columns WHERE database = {db:String} AND table = {t:String}', {
    params: { db: wh.database, t: table },
  });
}

export async function evolveTable(wh: Warehouse, table: string, columns: WarehouseColumn[], existing?: ExistingColumn[]): Promise<EvolutionReport> {
  existing ??= await tableColumns(wh, table);
  const current = new Map(existing.filter((c) => c.default_kind !== 'EPHEMERAL').map((c) => [c.name, c.type]));
  const report: EvolutionReport = { added: [], missingAtSource: [], widened: [] };
  const target = `${quoteIdent(wh.database)}.${quoteIdent(table)}`;

  for (const col of columns) {
    const had = current.get(col.name);
    if (had === undefined) {
      // Rows already loaded predate the column: it must be able to hold NULL for them.
      const type = col.type.startsWith('Nullable(') || col.type.startsWith('Array(') ? col.type : `Nullable(${col.type})`;
      if (col.viaRaw) {
        await wh.command(`ALTER TABLE ${target} ADD COLUMN ${quoteIdent(rawColumnName(col.name))} ${col.viaRaw.rawType} EPHEMERAL`);
        await wh.command(`ALTER TABLE ${target} ADD COLUMN ${quoteIdent(col.name)} ${type} DEFAULT ${col.viaRaw.convert(quoteIdent(rawColumnName(col.name)))}`);
      } else {
        await wh.command(`ALTER TABLE ${target} ADD COLUMN ${quoteIdent(col.name)} ${type}`);
      }
      report.added.push(col.name);
    } else if (had !== col.type && !isSafeWidening(col.type, had)) {
      if (!isSafeWidening(had, col.type)) {
        throw new IncompatibleSchemaChange(
          `Column "${col.sourceName}" changed type at the source (${col.sourceType}: warehouse ${had} → ${col.type}), ` +
            `which cannot be widened without changing values. Resync the table from scratch (delete its data and sync again).`,
        );
      }
      await wh.command(`ALTER TABLE ${target} MODIFY COLUMN ${quoteIdent(col.name)} ${col.type}`);
      report.widened.push(`${col.name}: ${had} → ${col.type}`);
    }
    current.delete(col.name);
  }
  for (const [name, type] of current) {
    if (name.startsWith('_tributary_')) continue;
    report.missingAtSource.push(name);
    if (!type.startsWith('Nullable(') && !type.startsWith('Array(')) {
      await wh.command(`ALTER TABLE ${target} MODIFY COLUMN ${quoteIdent(name)} Nullable(${type})`);
    }
  }
  return report;
}

export function evolutionWarnings(r: EvolutionReport): string[] {
  return [
    ...r.added.map((c) => `column ${c} was added at the source and to the warehouse table`),
    ...r.widened.map((c) => `column type widened: ${c}`),
    ...r.missingAtSource.map((c) => `column ${c} is no longer in the source; new rows have NULL in it`),
  ];
}
