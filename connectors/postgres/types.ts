import { warehouseColumnNames, type WarehouseColumn } from '../../warehouse/columns';
import type { CursorFieldType } from '../types';
import { quotePgIdent } from './connection';

/** A column as Postgres's catalog describes it. */
export interface PgColumn {
  name: string;
  typname: string; // pg_type.typname, e.g. int4, timestamptz, _text
  formatted: string; // format_type(), e.g. numeric(12,2), integer[]
  typmod: number;
  elemTypname: string | null; // for arrays
  nullable: boolean;
}

/** A warehouse column plus the SQL expression Postgres uses to render it in COPY text. */
export interface MappedColumn extends WarehouseColumn {
  selectExpr: string;
  /** pg_type.typname, for cursor comparisons. */
  pgType: string;
}

const SCALARS: Record<string, string> = {
  int2: 'Int16',
  int4: 'Int32',
  int8: 'Int64',
  oid: 'UInt32',
  float4: 'Float32',
  float8: 'Float64',
  bool: 'Bool',
  text: 'String',
  varchar: 'String',
  bpchar: 'String',
  name: 'String',
  citext: 'String',
  uuid: 'UUID',
  json: 'String',
  jsonb: 'String',
  date: 'Date32',
  timestamp: "DateTime64(6, 'UTC')",
  timestamptz: "DateTime64(6, 'UTC')",
};

/** Array element types that JSON carries exactly; other arrays land as Array(Nullable(String)). */
const JSON_EXACT_ELEMENTS: Record<string, string> = {
  int2: 'Int16',
  int4: 'Int32',
  int8: 'Int64',
  float8: 'Float64',
  bool: 'Bool',
  text: 'String',
  varchar: 'String',
  bpchar: 'String',
  name: 'String',
};

function numericType(typmod: number): string | undefined {
  if (typmod < 0) return undefined; // unconstrained numeric: no ClickHouse Decimal holds every value exactly
  const precision = ((typmod - 4) >> 16) & 0xffff;
  const scale = (typmod - 4) & 0xffff;
  if (precision < 1 || precision > 76 || scale > precision) return undefined;
  return `Decimal(${precision}, ${scale})`;
}

const nullableIf = (type: string, nullable: boolean) => (nullable ? `Nullable(${type})` : type);

/** Maps a table's columns, giving each its warehouse name. */
export function mapColumns(cols: PgColumn[]): MappedColumn[] {
  const names = warehouseColumnNames(cols.map((c) => c.name));
  return cols.map((c, i) => ({ ...mapColumn(c), name: names[i] }));
}

/**
 * Maps a Postgres column to its ClickHouse column and the server-side cast that renders it as
 * ClickHouse-readable TabSeparated text, so no row ever passes through a JavaScript object.
 */
export function mapColumn(col: PgColumn): MappedColumn {
  const ident = quotePgIdent(col.name);
  const base = { name: col.name, sourceName: col.name, sourceType: col.formatted, nullable: col.nullable, pgType: col.typname };

  if (col.elemTypname) {
    const elem = JSON_EXACT_ELEMENTS[col.elemTypname];
    const chElem = elem ?? 'String';
    const type = `Array(Nullable(${chElem}))`;
    // ClickHouse has no Nullable(Array): a NULL array lands as [] (documented in the README).
    return {
      ...base,
      type,
      selectExpr: elem ? `to_json(${ident})::text` : `to_json(${ident}::text[])::text`,
      viaRaw: { rawType: 'Nullable(String)', convert: (raw) => `JSONExtract(ifNull(${raw}, '[]'), '${type}')` },
    };
  }
  if (col.typname === 'bytea') {
    return {
      ...base,
      type: nullableIf('String', col.nullable),
      selectExpr: `encode(${ident}, 'hex')`,
      viaRaw: {
        rawType: 'Nullable(String)',
        convert: (raw) => (col.nullable ? `if(isNull(${raw}), NULL, unhex(${raw}))` : `unhex(ifNull(${raw}, ''))`),
      },
    };
  }
  if (col.typname === 'numeric') {
    const dec = numericType(col.typmod);
    return { ...base, type: nullableIf(dec ?? 'String', col.nullable), selectExpr: ident };
  }
  if (col.typname === 'timestamptz') {
    return { ...base, type: nullableIf(SCALARS.timestamptz, col.nullable), selectExpr: `${ident} AT TIME ZONE 'UTC'` };
  }
  const scalar = SCALARS[col.typname];
  if (scalar) return { ...base, type: nullableIf(scalar, col.nullable), selectExpr: ident };
  // Anything else (interval, time, inet, enums, money, ranges, ...) keeps Postgres's own text form.
  return { ...base, type: nullableIf('String', col.nullable), selectExpr: `${ident}::text` };
}

/** Cursor types of seed 000 that incremental and append can use. */
export function cursorFieldType(typname: string): CursorFieldType | undefined {
  switch (typname) {
    case 'int2':
    case 'int4':
    case 'int8':
      return 'integer';
    case 'numeric':
      return 'numeric';
    case 'date':
      return 'date';
    case 'timestamp':
      return 'timestamp';
    case 'timestamptz':
      return 'datetime';
    default:
      return undefined;
  }
}
