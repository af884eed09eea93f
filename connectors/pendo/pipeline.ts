/**
 * The aggregation request that pages through visitors or accounts by their id. The stages, in order:
 *
 *   {"source": {"visitors": null}}                       the rows (or {"accounts": null})
 *   {"filter": "metadata.auto.lastupdated >= 1700000000000"}   incremental only: updated since (epoch ms)
 *   {"sort": ["visitorId"]}                              keyset order
 *   {"filter": "visitorId > \"the last id\""}            resuming only: past the last id already read
 *   {"limit": 5000}                                      one page
 *
 * Filter grammar — exactly what this module emits, one comparison per filter stage, never joined:
 *
 *   filter  := path " " op " " literal
 *   path    := ident ("." ident)*          ident := [A-Za-z_][A-Za-z0-9_]*
 *   op      := ">" | ">="
 *   literal := integer | string            integer := "-"? [0-9]+
 *   string  := '"' (char | '\"' | '\\')* '"'   char: anything but '"' and '\' (Pendo's ids may hold both)
 *
 * Strings compare as Pendo sorts them, so "after the last id" is exactly the rest of the sort order.
 *
 * Counting the rows an incremental run never sees (no `metadata.auto.lastupdated`): the source, then
 * `{"filter": "metadata.auto.lastupdated == null"}` and `{"count": null}`, whose one result is `{"count": N}`.
 */
export interface PipelineOptions {
  source: 'visitors' | 'accounts';
  /** The id field the rows are keyed and sorted by. */
  key: string;
  limit: number;
  /** Incremental: rows whose `metadata.auto.lastupdated` is at or after this (epoch milliseconds). */
  updatedSince?: number;
  /** Resuming: rows whose key sorts after this one. */
  after?: string;
}

export type PipelineStage = Record<string, unknown>;

export interface AggregationBody {
  response: { mimeType: 'application/json' };
  request: { pipeline: PipelineStage[] };
}

/** A string literal of Pendo's filter expressions: double quotes, with `\` and `"` escaped by a backslash. */
export function quoteLiteral(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function aggregationPipeline(opts: PipelineOptions): PipelineStage[] {
  const stages: PipelineStage[] = [{ source: { [opts.source]: null } }];
  if (opts.updatedSince !== undefined) stages.push({ filter: `metadata.auto.lastupdated >= ${Math.floor(opts.updatedSince)}` });
  stages.push({ sort: [opts.key] });
  if (opts.after !== undefined) stages.push({ filter: `${opts.key} > ${quoteLiteral(opts.after)}` });
  stages.push({ limit: opts.limit });
  return stages;
}

export function aggregationBody(opts: PipelineOptions): AggregationBody {
  return { response: { mimeType: 'application/json' }, request: { pipeline: aggregationPipeline(opts) } };
}

/** How many rows of `source` have no `metadata.auto.lastupdated` (so an incremental filter on it never matches them). */
export function nullLastUpdatedCountBody(source: PipelineOptions['source']): AggregationBody {
  return {
    response: { mimeType: 'application/json' },
    request: { pipeline: [{ source: { [source]: null } }, { filter: 'metadata.auto.lastupdated == null' }, { count: null }] },
  };
}
