import { kitColumn, type ColumnKind, type KitColumn } from '../kit';
import { snakeCase } from '../../warehouse/columns';

/**
 * The five Pendo tables of seed 004, keyed as PostHog keys them. Features, pages and guides are Pendo's list
 * endpoints (one bare JSON array, every app with `expand=*`); visitors and accounts come from the aggregation
 * endpoint, paged by their id. Warehouse names are the snake case of Pendo's camelCase fields (`createdAt` lands
 * as `created_at`); source names stay Pendo's, so keys and the incremental field are named as Pendo names them.
 */
export type PendoTableName = 'features' | 'pages' | 'guides' | 'visitors' | 'accounts';

export interface ListTable {
  name: 'features' | 'pages' | 'guides';
  kind: 'list';
  /** GET path; the answer is a bare JSON array. */
  path: string;
  key: 'id';
  columns: KitColumn[];
}

export interface AggregationTable {
  name: 'visitors' | 'accounts';
  kind: 'aggregation';
  /** The pipeline's source: `{"visitors": null}` / `{"accounts": null}`. */
  source: 'visitors' | 'accounts';
  key: 'visitorId' | 'accountId';
  columns: KitColumn[];
}

export type PendoTable = ListTable | AggregationTable;

/** The incremental field of visitors and accounts: the lifted column of `metadata.auto.lastupdated`. */
export const INCREMENTAL_FIELD = 'lastupdated';
export const LASTUPDATED_PATH = ['metadata', 'auto', 'lastupdated'];

/** A top-level Pendo field, landing under its snake-case name. */
const field = (sourceName: string, kind: ColumnKind, nullable = true) => kitColumn(snakeCase(sourceName), kind, { sourceName, nullable });

/** A field inside a metadata group, lifted to a column of its own (the group also stays whole in `metadata`). */
const lifted = (group: string, name: string, kind: ColumnKind) => kitColumn(name, kind, { sourceName: name, path: ['metadata', group, name] });

/** What every list object has: identity, app, authorship and its times (epoch milliseconds). */
const LIST_COMMON: KitColumn[] = [
  field('id', 'string', false),
  field('appId', 'int'),
  field('name', 'string'),
  field('description', 'string'),
  field('kind', 'string'),
  field('color', 'string'),
  field('group', 'json'),
  field('createdAt', 'timestamp_ms'),
  field('createdByUser', 'json'),
  field('lastUpdatedAt', 'timestamp_ms'),
  field('lastUpdatedByUser', 'json'),
  field('rootVersionId', 'string'),
  field('stableVersionId', 'string'),
  field('validThrough', 'timestamp_ms'),
  field('dirty', 'bool'),
];

/** Features and pages are both "tagged" rules over the app's UI. */
const TAGGED: KitColumn[] = [field('isCoreEvent', 'bool'), field('appWide', 'bool'), field('eventPropertyConfigurations', 'json')];

export const PENDO_TABLES: PendoTable[] = [
  {
    name: 'features',
    kind: 'list',
    path: '/api/v1/feature',
    key: 'id',
    columns: [...LIST_COMMON, ...TAGGED, field('pageId', 'string'), field('elementPathRules', 'json')],
  },
  {
    name: 'pages',
    kind: 'list',
    path: '/api/v1/page',
    key: 'id',
    columns: [...LIST_COMMON, ...TAGGED, field('rules', 'json')],
  },
  {
    name: 'guides',
    kind: 'list',
    path: '/api/v1/guide',
    key: 'id',
    columns: [
      ...LIST_COMMON,
      field('state', 'string'),
      field('launchMethod', 'string'),
      field('isMultiStep', 'bool'),
      field('isModule', 'bool'),
      field('isTraining', 'bool'),
      field('isTopLevel', 'bool'),
      field('publishedAt', 'timestamp_ms'),
      field('publishedEver', 'bool'),
      field('resetAt', 'timestamp_ms'),
      field('showsAfter', 'timestamp_ms'),
      field('expiresAfter', 'timestamp_ms'),
      field('recurrence', 'int'),
      field('recurrenceEligibilityWindow', 'int'),
      field('authoredLanguage', 'string'),
      field('emailState', 'string'),
      field('steps', 'json'),
      field('attributes', 'json'),
      field('audience', 'json'),
      field('audienceUiHint', 'json'),
      field('polls', 'json'),
    ],
  },
  {
    name: 'visitors',
    kind: 'aggregation',
    source: 'visitors',
    key: 'visitorId',
    columns: [
      field('visitorId', 'string', false),
      // Every group whole (auto, agent, custom, auto__<appId>, integration groups): queryable with JSONExtract.
      field('metadata', 'json'),
      lifted('auto', 'accountid', 'string'),
      lifted('auto', 'accountids', 'json'),
      lifted('auto', 'firstvisit', 'timestamp_ms'),
      lifted('auto', 'lastvisit', 'timestamp_ms'),
      lifted('auto', INCREMENTAL_FIELD, 'timestamp_ms'),
      lifted('auto', 'idhash', 'int'),
      lifted('auto', 'nid', 'int'),
      lifted('auto', 'lastbrowsername', 'string'),
      lifted('auto', 'lastbrowserversion', 'string'),
      lifted('auto', 'lastoperatingsystem', 'string'),
      lifted('auto', 'lastservername', 'string'),
      lifted('auto', 'lastuseragent', 'string'),
    ],
  },
  {
    name: 'accounts',
    kind: 'aggregation',
    source: 'accounts',
    key: 'accountId',
    columns: [
      field('accountId', 'string', false),
      field('metadata', 'json'),
      lifted('auto', 'firstvisit', 'timestamp_ms'),
      lifted('auto', 'lastvisit', 'timestamp_ms'),
      lifted('auto', INCREMENTAL_FIELD, 'timestamp_ms'),
      lifted('auto', 'idhash', 'int'),
    ],
  },
];

const byName = new Map(PENDO_TABLES.map((t) => [t.name as string, t]));

export function pendoTable(name: string): PendoTable | undefined {
  return byName.get(name);
}
