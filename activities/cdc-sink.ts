import type { CdcEvent, CdcRelation } from '../connectors/types';
import type { Logger } from '../platform/logger';
import { CHANGE_INPUT, rowJsonExpr, type ChangeSelect } from '../warehouse/change-log';
import { dataColumns } from '../warehouse/change-diff';
import { quoteIdent, sqlString, type Warehouse } from '../warehouse/client';
import { truncateTableSql } from '../warehouse/cluster';
import { insertColumnNames, keepExistingColumnNames, type WarehouseColumn } from '../warehouse/columns';
import { evolveTable, evolutionWarnings, tableColumns } from '../warehouse/evolution';
import { tsvEscape, tsvUnescape, TSV_NULL } from '../warehouse/tsv';

/**
 * Turns a change stream into warehouse inserts: changes are buffered as TabSeparated fields, written
 * in order (one insert per table and column set), and only after a write is durable is the last
 * commit it covered handed to `onDurable` — which saves the checkpoint and then acknowledges the slot.
 *
 * Batches are flushed at a commit when they hold `maxChanges` changes or their oldest change has
 * waited `maxWaitMs`. A transaction larger than `4 × maxChanges` is written in parts so memory stays
 * bounded; its commit is still the only checkpoint, so a crash inside it replays it whole (the
 * versions make the replay idempotent after FINAL).
 *
 * Every change written is also recorded in the change log (warehouse/change-log.ts), after its table has it and
 * before `onDurable`: a crash in between replays the batch, so a change may be recorded twice, never lost.
 */
export interface SinkTable {
  /** Warehouse table. */
  target: string;
  /** Primary key (source column names). */
  primaryKey: string[];
}

export interface SinkOptions {
  warehouse: Warehouse;
  log: Logger;
  tables: Map<string, SinkTable>;
  maxChanges: number;
  maxWaitMs: number;
  /** Called, in order, once every change up to `lsn` is in the warehouse. */
  /** `commitAt`: the source's commit time of the commit at `lsn`, when the source reports it. */
  onDurable(lsn: bigint, changes: Map<string, number>, commitAt: Date | null): Promise<void>;
  /** Called when the source is idle at `lsn` and nothing is buffered: safe to acknowledge. */
  onIdle(lsn: bigint): Promise<void>;
  /** Puts changes in the change log (activities/change-recorder.ts); absent: nothing is recorded. */
  recordChanges?(select: Omit<ChangeSelect, 'sourceId'>): Promise<unknown>;
  warn(message: string): void;
}

interface Row {
  fields: (string | undefined)[];
  lsn: bigint;
  deleted: boolean;
  /** As the source logged it; `upsert` is recorded as an update. */
  op: 'insert' | 'update' | 'upsert' | 'delete';
  /** A delete that carries only the key's values. */
  keyOnly?: boolean;
}

interface Segment {
  table: string;
  relation: RelationInfo;
  rows: Row[];
}

interface RelationInfo {
  relation: CdcRelation;
  insertColumns: string[];
  keyIndexes: number[];
  /** How the change log reads this relation's changes (undefined: the table has no usable key). */
  changes?: { structure: string; sql: string };
}

class Batch {
  segments: Segment[] = [];
  changes = 0;
  perTable = new Map<string, number>();
  /** End LSN of the last commit whose changes are all in this batch or earlier ones. */
  commitLsn: bigint | null = null;
  /** The source's commit time of that commit. */
  commitAt: Date | null = null;
  firstAt = 0;
  /** Latest row image per key, per table, for filling unchanged TOASTed values. */
  images = new Map<string, Map<string, Row>>();
  truncates: string[] = [];
}

const keyOf = (row: Row, idx: number[]) => idx.map((i) => row.fields[i]).join('\t');

export class CdcSink {
  private relations = new Map<string, RelationInfo>();
  private batch = new Batch();
  /** Every batch flushed so far is durable: in its tables, in the change log, and handed to onDurable. */
  private writing: Promise<void> = Promise.resolve();
  /** Every batch flushed so far is in its tables (the change log may still be taking it). */
  private tablesWritten: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private failure: Error | undefined;
  private timer: NodeJS.Timeout;
  private lastEventAt = Date.now();

  constructor(private readonly opts: SinkOptions) {
    this.timer = setInterval(() => {
      const b = this.batch;
      if ((b.changes || b.commitLsn !== null) && Date.now() - b.firstAt >= this.opts.maxWaitMs) this.flush();
    }, Math.max(10, Math.min(250, opts.maxWaitMs / 4)));
  }

  /** The first write error, if any: the stream must stop (the checkpoint never passed it). */
  get error(): Error | undefined {
    return this.failure;
  }

  get idleForMs(): number {
    return Date.now() - this.lastEventAt;
  }

  async handle(event: CdcEvent): Promise<void> {
    if (this.failure) throw this.failure;
    this.lastEventAt = Date.now();
    try {
      return await this.dispatch(event);
    } catch (err) {
      // Whatever failed, nothing after it may be written or checkpointed.
      this.failure ??= err as Error;
      throw err;
    }
  }

  private dispatch(event: CdcEvent): Promise<void> | void {
    switch (event.type) {
      case 'relation':
        return this.onRelation(event.relation);
      case 'change':
        return this.onChange(event.table, event.op, event.lsn, event.fields, event.keyOnly);
      case 'truncate':
        return this.onTruncate(event.tables, event.lsn);
      case 'commit': {
        const b = this.batch;
        // A transaction with no rows for us is still a position to checkpoint, at the next flush.
        if (!b.firstAt) b.firstAt = Date.now();
        b.commitLsn = event.lsn;
        if (event.commitTime) b.commitAt = event.commitTime;
        if (b.changes >= this.opts.maxChanges || Date.now() - b.firstAt >= this.opts.maxWaitMs) {
          const written = this.flush();
          // Backpressure: a batch's changes are recorded while the next one's tables are written and a third
          // fills; a fourth waits.
          if (this.inFlight > 2) return written;
        }
        return;
      }
      case 'keepalive':
        if (event.idle && this.batch.changes === 0 && this.batch.commitLsn === null) return this.onIdle(event.lsn);
        return;
    }
  }

  private async onIdle(lsn: bigint) {
    await this.writing;
    if (this.batch.changes === 0 && this.batch.commitLsn === null && !this.failure) await this.opts.onIdle(lsn);
  }

  private async onRelation(relation: CdcRelation) {
    const table = this.opts.tables.get(relation.table);
    if (!table) return;
    const known = this.relations.get(relation.table);
    const same =
      known &&
      known.relation.columns.length === relation.columns.length &&
      known.relation.columns.every((c, i) => c.sourceName === relation.columns[i].sourceName && c.type === relation.columns[i].type);
    if (same) return;
    // A column added or retyped at the source: the warehouse follows before any row that carries it.
    await this.flush();
    // A table synced under the old naming rule keeps its names (warehouse/columns.ts).
    const existing = await tableColumns(this.opts.warehouse, table.target);
    relation = { ...relation, columns: keepExistingColumnNames(relation.columns, existing.map((c) => c.name)) };
    const report = await evolveTable(this.opts.warehouse, table.target, relation.columns, existing);
    for (const w of evolutionWarnings(report)) this.opts.warn(`${table.target}: ${w}`);
    const keyIndexes = table.primaryKey.map((k) => relation.columns.findIndex((c) => c.sourceName === k));
    const keyed = keyIndexes.length > 0 && keyIndexes.every((i) => i >= 0);
    const types = new Map((await tableColumns(this.opts.warehouse, table.target)).map((c) => [c.name, c.type]));
    this.relations.set(relation.table, {
      relation,
      insertColumns: insertColumnNames(relation.columns as WarehouseColumn[], ['_tributary_version', '_tributary_is_deleted']),
      keyIndexes: keyed ? keyIndexes : [],
      changes: keyed ? changeLogInput(relation.columns as WarehouseColumn[], keyIndexes, types) : undefined,
    });
  }

  private onChange(table: string, op: Row['op'], lsn: bigint, fields: (string | undefined)[], keyOnly?: boolean): Promise<void> | void {
    const info = this.relations.get(table);
    if (!info) return;
    const deleted = op === 'delete';
    const b = this.batch;
    if (!b.firstAt) b.firstAt = Date.now();
    let seg = b.segments[b.segments.length - 1];
    if (!seg || seg.table !== table || seg.relation !== info) {
      seg = { table, relation: info, rows: [] };
      b.segments.push(seg);
    }
    const row: Row = { fields, lsn, deleted, op, keyOnly };
    if (info.keyIndexes.length) {
      let images = b.images.get(table);
      if (!images) b.images.set(table, (images = new Map()));
      const key = keyOf(row, info.keyIndexes);
      if (!deleted && fields.includes(undefined)) {
        // An unchanged TOASTed value: the image earlier in this batch has it; else the warehouse (at write time).
        const prev = images.get(key);
        if (prev && !prev.deleted) for (let i = 0; i < fields.length; i++) if (fields[i] === undefined) fields[i] = prev.fields[i];
      }
      images.set(key, row);
    }
    seg.rows.push(row);
    b.changes++;
    b.perTable.set(table, (b.perTable.get(table) ?? 0) + 1);
    // A transaction far larger than a batch is written in parts (see the class comment).
    if (b.changes >= this.opts.maxChanges * 4) return this.flush();
  }

  private async onTruncate(tables: string[], lsn: bigint) {
    await this.flush();
    for (const t of tables) {
      const table = this.opts.tables.get(t);
      if (!table) continue;
      // Every live row is deleted: recorded as such (with its last values) before the rows go.
      const keyNames = this.relations.get(t)?.changes ? this.relations.get(t)!.keyIndexes.map((i) => this.relations.get(t)!.relation.columns[i].name) : [];
      if (keyNames.length && this.opts.recordChanges) {
        const cols = dataColumns(await tableColumns(this.opts.warehouse, table.target)).map((c) => c.name);
        await this.opts.recordChanges({
          table: table.target,
          sql: `SELECT 'delete' AS op, ${rowJsonExpr(keyNames)} AS key, ${rowJsonExpr(keyNames)} AS row, ${rowJsonExpr(cols)} AS old_row, toUInt64(${lsn.toString()}) AS version
                  FROM ${quoteIdent(this.opts.warehouse.database)}.${quoteIdent(table.target)} FINAL WHERE _tributary_is_deleted = 0 ORDER BY ${keyNames.map(quoteIdent).join(', ')}`,
        });
      }
      // The source emptied the table: so does the warehouse (the rows before it were written first).
      await this.opts.warehouse.command(truncateTableSql(this.opts.warehouse.database, table.target, { cluster: this.opts.warehouse.cluster }));
      this.opts.log.info({ table: table.target }, 'source table truncated: warehouse table truncated');
    }
  }

  /** Starts writing the current batch (after the one being written); resolves when it is durable. */
  flush(): Promise<void> {
    const b = this.batch;
    if (b.changes === 0 && b.commitLsn === null) return this.writing;
    this.batch = new Batch();
    this.inFlight++;
    // Two chains: a batch's tables are written after the previous batch's tables; its changes are recorded (and
    // its commit handed on) after its tables and after the previous batch's changes. So the change log takes
    // batch N while the tables take batch N + 1, and both keep the stream's order.
    const tables = this.tablesWritten.then(() => this.writeTables(b));
    // Batches whose tables are written queue for the recorder, in order; it takes all that wait at once.
    const durable = new Promise<void>((resolve, reject) => {
      tables.then(() => {
        this.toRecord.push({ b, resolve, reject });
        void this.pumpRecorder();
      }, reject);
    });
    this.tablesWritten = tables;
    this.writing = durable.finally(() => this.inFlight--);
    for (const p of [tables, this.writing]) {
      p.catch((err: Error) => {
        this.failure ??= err;
      });
    }
    return this.writing;
  }

  private toRecord: { b: Batch; resolve: () => void; reject: (err: Error) => void }[] = [];
  private recorderBusy = false;

  /**
   * Records every batch waiting (one change-log insert per table for all of them: small batches under a steady
   * stream share the cost), then hands the last commit among them to onDurable, and resolves their flushes.
   */
  private async pumpRecorder() {
    if (this.recorderBusy) return;
    this.recorderBusy = true;
    try {
      while (this.toRecord.length) {
        const group = this.toRecord.splice(0, this.toRecord.length);
        try {
          if (this.failure) throw this.failure;
          await this.recordSegments(group.flatMap((g) => g.b.segments));
          const lsn = group.reduce<bigint | null>((last, g) => g.b.commitLsn ?? last, null);
          const perTable = new Map<string, number>();
          for (const g of group) for (const [t, n] of g.b.perTable) perTable.set(t, (perTable.get(t) ?? 0) + n);
          const commitAt = group.reduce<Date | null>((last, g) => g.b.commitAt ?? last, null);
          if (lsn !== null) await this.opts.onDurable(lsn, perTable, commitAt);
          for (const g of group) g.resolve();
        } catch (err) {
          this.failure ??= err as Error;
          for (const g of group) g.reject(err as Error);
        }
      }
    } finally {
      this.recorderBusy = false;
    }
  }

  private async writeTables(b: Batch) {
    if (this.failure) throw this.failure;
    for (const seg of b.segments) {
      await this.fillToasted(seg);
      const target = this.opts.tables.get(seg.table)!.target;
      const lines: string[] = new Array(seg.rows.length);
      for (let i = 0; i < seg.rows.length; i++) {
        const r = seg.rows[i];
        lines[i] = `${(r.fields as string[]).join('\t')}\t${r.lsn}\t${r.deleted ? 1 : 0}\n`;
      }
      const data = Buffer.from(lines.join(''), 'utf8');
      try {
        await this.opts.warehouse.insertBytes(target, seg.relation.insertColumns, data, { format: 'TabSeparated' });
      } catch (err) {
        this.opts.log.debug({ table: target, columns: seg.relation.insertColumns, head: data.subarray(0, 2000).toString('utf8') }, 'CDC insert failed');
        throw new Error(`writing ${seg.rows.length} changes to ${target} failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /**
   * The batch's changes into the change log, once per table (a table has one relation within a batch: a new
   * one flushes first), in the stream's order: rendered by the engine from the values the table was given.
   */
  private async recordSegments(segments: Segment[]) {
    if (!this.opts.recordChanges) return;
    // By relation: a table has one between flushes (a new one is taken only once all before it is durable).
    const byTable = new Map<RelationInfo, Segment[]>();
    for (const seg of segments) {
      if (!seg.relation.changes || !seg.rows.length) continue;
      byTable.set(seg.relation, [...(byTable.get(seg.relation) ?? []), seg]);
    }
    for (const segs of byTable.values()) {
      const changes = segs[0].relation.changes!;
      const lines: string[] = [];
      let n = 0;
      for (const seg of segs) {
        for (const r of seg.rows) {
          const op = r.op === 'upsert' ? 'update' : r.op;
          lines.push(`${(r.fields as string[]).join('\t')}\t${r.lsn}\t${op}\t${r.deleted && !r.keyOnly ? 1 : 0}\t${n++}\n`);
        }
      }
      await this.opts.recordChanges({
        table: this.opts.tables.get(segs[0].table)!.target,
        sql: changes.sql,
        input: { structure: changes.structure, data: Buffer.from(lines.join(''), 'utf8') },
      });
    }
  }

  /** Unchanged TOASTed values not found earlier in the batch come from the row as the warehouse has it. */
  private async fillToasted(seg: Segment) {
    const missing = seg.rows.filter((r) => !r.deleted && r.fields.includes(undefined));
    if (!missing.length) return;
    const { relation, keyIndexes } = seg.relation;
    const target = this.opts.tables.get(seg.table)!.target;
    const cols = relation.columns;
    const keys = missing.map((r) => keyIndexes.map((i) => tsvUnescape(r.fields[i] ?? '')));
    const render = (c: WarehouseColumn) =>
      c.viaRaw ? (c.type.startsWith('Array(') ? `toJSONString(${quoteIdent(c.name)})` : `lower(hex(${quoteIdent(c.name)}))`) : `toString(${quoteIdent(c.name)})`;
    const keyTuple = `tuple(${keyIndexes.map((i) => `toString(${quoteIdent(cols[i].name)})`).join(', ')})`;
    // Keys inline as string literals: the lookup runs once per batch, on the few rows that need it.
    const keyList = keys.map((k) => `tuple(${k.map(sqlString).join(', ')})`).join(', ');
    const found = await this.opts.warehouse.queryRows<{ k: string[]; v: (string | null)[] }>(
      `SELECT ${keyTuple} AS k, [${cols.map(render).join(', ')}] AS v
         FROM ${quoteIdent(this.opts.warehouse.database)}.${quoteIdent(target)} FINAL
        WHERE ${keyTuple} IN (${keyList})`,
      { settings: { output_format_json_quote_64bit_integers: 0 } },
    );
    const byKey = new Map(found.map((f) => [Object.values(f.k).join('\t'), f.v]));
    for (let n = 0; n < missing.length; n++) {
      const row = missing[n];
      const current = byKey.get(keys[n].join('\t'));
      if (!current) this.opts.warn(`${target}: an update left a TOASTed value unchanged but the row is not in the warehouse; stored as NULL`);
      for (let i = 0; i < row.fields.length; i++) {
        if (row.fields[i] !== undefined) continue;
        const v = current?.[i];
        row.fields[i] = v === null || v === undefined ? TSV_NULL : tsvEscape(v);
      }
    }
  }

  /** Writes what is buffered and waits for every write. */
  async drain(): Promise<void> {
    await this.flush();
    if (this.failure) throw this.failure;
  }

  close() {
    clearInterval(this.timer);
  }
}

/**
 * How a relation's changes are read into the change log: the TabSeparated fields the table was given, then the
 * LSN, the op, whether a delete carries the whole old row, and the change's place. Each column is read as it was
 * loaded (a raw column through its conversion) and cast to the table's type, so the engine renders the values as
 * the table holds them. A delete's `row` is its key; its `old_row` the old values when the source sent them.
 */
export function changeLogInput(columns: WarehouseColumn[], keyIndexes: number[], types: Map<string, string>): { structure: string; sql: string } {
  const structure: string[] = [];
  const select: string[] = [];
  columns.forEach((c, i) => {
    const slot = `_tributary_c${i}`;
    structure.push(`${quoteIdent(slot)} ${c.viaRaw ? c.viaRaw.rawType : c.type}`);
    const value = c.viaRaw ? c.viaRaw.convert(quoteIdent(slot)) : quoteIdent(slot);
    select.push(`CAST(${value}, ${sqlString(types.get(c.name) ?? c.type)}) AS ${quoteIdent(c.name)}`);
  });
  structure.push('_tributary_change_lsn UInt64', '_tributary_change_op String', '_tributary_change_full UInt8', '_tributary_change_n UInt64');
  const names = columns.map((c) => c.name);
  const key = rowJsonExpr(keyIndexes.map((i) => names[i]));
  const row = rowJsonExpr(names);
  const sql = `SELECT _tributary_change_op AS op, ${key} AS key,
      if(_tributary_change_op = 'delete', ${key}, ${row}) AS row,
      if(_tributary_change_full = 1, ${row}, NULL) AS old_row,
      _tributary_change_lsn AS version
    FROM (SELECT ${select.join(', ')}, _tributary_change_lsn, _tributary_change_op, _tributary_change_full, _tributary_change_n FROM ${CHANGE_INPUT})
    ORDER BY _tributary_change_n`;
  return { structure: structure.join(', '), sql };
}
