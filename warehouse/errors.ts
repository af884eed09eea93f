/**
 * Which engine errors no retry can fix. ClickHouse answers a statement it will never accept as it stands — a
 * type it can't convert, data it can't parse, an ALTER it forbids — with the same error every time: retrying
 * only delays the failure (a CDC stream retried such an error forever while its slot held WAL). Lost connections,
 * timeouts, memory limits and a restarted engine are absent here: those are worth retrying.
 */
const PERMANENT_CODES = new Map<string, string>([
  ['6', 'CANNOT_PARSE_TEXT'],
  ['15', 'DUPLICATE_COLUMN'],
  ['16', 'NO_SUCH_COLUMN_IN_TABLE'],
  ['26', 'CANNOT_PARSE_QUOTED_STRING'],
  ['27', 'CANNOT_PARSE_INPUT_ASSERTION_FAILED'],
  ['36', 'BAD_ARGUMENTS'],
  ['38', 'CANNOT_PARSE_DATE'],
  ['41', 'CANNOT_PARSE_DATETIME'],
  ['43', 'ILLEGAL_TYPE_OF_ARGUMENT'],
  ['44', 'ILLEGAL_COLUMN'],
  ['47', 'UNKNOWN_IDENTIFIER'],
  ['50', 'UNKNOWN_TYPE'],
  ['53', 'TYPE_MISMATCH'],
  ['62', 'SYNTAX_ERROR'],
  ['69', 'ARGUMENT_OUT_OF_BOUND'],
  ['70', 'CANNOT_CONVERT_TYPE'],
  ['72', 'CANNOT_PARSE_NUMBER'],
  ['117', 'INCORRECT_DATA'],
  ['321', 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE'],
  ['524', 'ALTER_OF_COLUMN_IS_FORBIDDEN'],
]);

/** The engine error in `err` or its causes that can never succeed on retry, if any. */
export function permanentEngineError(err: unknown): (Error & { code: string }) | undefined {
  for (let e = err as (Error & { code?: unknown; cause?: unknown }) | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code !== undefined && PERMANENT_CODES.has(String(e.code))) return e as Error & { code: string };
  }
  return undefined;
}

/** ClickHouse's name for an error code, for messages ("ALTER_OF_COLUMN_IS_FORBIDDEN"). */
export const engineErrorName = (code: string) => PERMANENT_CODES.get(code) ?? `code ${code}`;
