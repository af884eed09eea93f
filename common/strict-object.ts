import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';

/**
 * Objects that refuse keys they do not know. A typo such as `sync_frequncy` would otherwise be dropped
 * and its default used in silence; refused, it is named with the known key it most likely meant.
 */

// The keys an `unrecognized_keys` issue was raised against, keyed by the issue's own `keys` array: zod
// keeps that array on the finished issue but drops the schema, and the API's 400 details want one
// suggestion per unknown key.
const knownByIssue = new WeakMap<readonly string[], readonly string[]>();

/** The known key within a small edit distance of `key` (case aside), if there is one. */
export function closestKnown(key: string, known: readonly string[]): string | undefined {
  if (!known.length) return undefined;
  const lower = key.toLowerCase();
  const best = closest(lower, known);
  const d = distance(lower, best);
  // A third of the name may differ (at least two edits, so `hots` finds `host`), but never the whole of it.
  return d <= Math.max(2, Math.floor(best.length / 3)) && d < lower.length && d < best.length ? best : undefined;
}

export function unknownFieldMessage(key: string, known: readonly string[] | undefined): string {
  if (!known?.length) return `unknown field "${key}"`;
  const best = closestKnown(key, known);
  return best ? `unknown field "${key}": did you mean "${best}"?` : `unknown field "${key}" (known fields: ${known.join(', ')})`;
}

/** The keys the object that raised an `unrecognized_keys` issue knows, when it was made by `strictObject`. */
export const knownKeysOf = (issueKeys: readonly string[]) => knownByIssue.get(issueKeys);

/**
 * z.strictObject whose unknown-key issues carry the known keys (read from the schema that raised the
 * issue, so `.extend()`ed copies suggest their own keys). `message` is the one for a body that is no object.
 */
export function strictObject<S extends z.core.$ZodLooseShape>(shape: S, message?: string) {
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code !== 'unrecognized_keys') return iss.code === 'invalid_type' ? message : undefined;
      const known = Object.keys((iss.inst as z.ZodObject | undefined)?._zod.def.shape ?? shape);
      knownByIssue.set(iss.keys, known);
      return iss.keys.map((k) => unknownFieldMessage(k, known)).join('; ');
    },
  });
}
