import { temporal } from '@temporalio/proto';

/**
 * Workflow histories as JSON files (test/histories/), through @temporalio/proto's own types: the SDK's
 * historyToJSON/historyFromJSON fail here ("type must be a Type": @temporalio/common bundles another
 * protobufjs than the one @temporalio/proto's types were built with).
 */
const History = temporal.api.history.v1.History;

export function historyToFileText(history: temporal.api.history.v1.IHistory): string {
  const obj = History.toObject(History.fromObject(history), { longs: String, enums: String, bytes: String, json: true });
  return JSON.stringify(obj, null, 1) + '\n';
}

export function historyFromFileText(text: string): temporal.api.history.v1.History {
  return History.fromObject(JSON.parse(text));
}
