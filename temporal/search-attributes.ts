import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes, so a run is found in the Temporal UI by source, type, table and sync type. */
export const SA = {
  sourceId: defineSearchAttributeKey('TributarySourceId', SearchAttributeType.KEYWORD),
  sourceType: defineSearchAttributeKey('TributarySourceType', SearchAttributeType.KEYWORD),
  table: defineSearchAttributeKey('TributaryTable', SearchAttributeType.KEYWORD),
  syncType: defineSearchAttributeKey('TributarySyncType', SearchAttributeType.KEYWORD),
};

export const SEARCH_ATTRIBUTE_NAMES = Object.values(SA).map((k) => k.name);
