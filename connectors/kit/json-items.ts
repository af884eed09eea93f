/**
 * The items of one JSON array inside a response body, parsed one at a time as the bytes arrive, so a
 * page of any size is never held whole: either the body itself is the array (`at` undefined: Pendo's
 * list endpoints), or it is an object whose top-level key `at` holds it (`results` of an aggregation).
 * Each item's text is cut out by a scanner that only tracks strings and nesting, then given to
 * JSON.parse — far faster than a token-by-token streaming parser, and as strict.
 *
 * `pushItems` also keeps each item's text and where its top-level members sit in it, with what the scan saw on
 * the way (whitespace, escapes, number forms, keys): enough to hand a member's text on as JSON text when it is
 * provably what JSON.stringify of the parsed member would write (`memberJson`), instead of re-serializing it.
 */

/** An item as scanned: its parsed value and its text, with what `memberJson` needs. */
export interface ScannedItem {
  /** The parsed item; undefined when the scanner was asked not to parse (`parse: false`: the caller parses `text`). */
  value: unknown;
  text: string;
  /**
   * False when the text may differ from JSON.stringify of the value: whitespace between tokens, an escape other than
   * \" \\ \b \f \n \r \t, a number other than an integer of at most 15 digits (1.0, 1e21, -0, big ints), a key that
   * starts with a digit (JSON.parse may put it first: "1"), a string not well-formed UTF-16. Conservative: false may still be canonical, true never is not (save duplicate keys:
   * `keys` counts the raw ones, checked against the parsed value on first use).
   */
  canonical: boolean;
  /** Any backslash in the text (so its TabSeparated form needs escaping; without one it needs none). */
  backslashes: boolean;
  /** Keys (colons outside strings) in the text. */
  keys: number;
  /** An object item's top-level members: key start, key end, value start, value end (offsets into `text`), 4 a member. */
  members: number[];
  /** Whether the parsed value has as many keys as the text (no duplicate dropped): undefined until checked. */
  distinctKeys?: boolean;
}

export class JsonArrayScanner {
  private depth = 0;
  private inString = false;
  private escape = false;
  /** The depth inside the target array (0: not reached yet). */
  private arrayDepth = 0;
  private done = false;
  private started = false;
  /** keyed mode: the depth-1 key being read, and the last one read. */
  private expectingKey = false;
  private keyText: string | null = null;
  private lastKey: string | null = null;
  private afterColon = false;
  /** An item is being cut out; `pending`: its text from earlier chunks. */
  private inItem = false;
  private pending = '';
  // What the scan of the current item saw (ScannedItem).
  private canonical = true;
  private backslashes = false;
  private keys = 0;
  private members: number[] = [];
  private isObject = false;
  /** The current member's value start (-1: none open), the last string's content start / end and first character. */
  private valueStart = -1;
  private strStart = 0;
  private strEnd = 0;
  private strFirst = -1;
  private digits = 0;
  private minus = false;

  /** `parse: false`: items come with their text only (a render thread parses them: row-thread.ts). */
  constructor(
    private readonly at?: string,
    private readonly opts: { parse?: boolean } = {},
  ) {}

  /** Feeds the next piece of text; returns the items completed in it. */
  push(chunk: string): unknown[] {
    return this.pushItems(chunk).map((item) => item.value);
  }

  /** Feeds the next piece of text; returns the items completed in it, each with its text. */
  pushItems(chunk: string): ScannedItem[] {
    const items: ScannedItem[] = [];
    if (this.done) return items;
    const n = chunk.length;
    let itemStart = this.inItem ? 0 : -1;
    // Offset in the item's text of chunk position i: i + shift.
    let shift = this.inItem ? this.pending.length : 0;
    // The next backslash at or after where it was last looked for (n: none): backslashes are rare, so one
    // indexOf per chunk mostly, instead of a look inside every string.
    let nextBackslash = -1;
    for (let i = 0; i < n; i++) {
      const c = chunk.charCodeAt(i);
      if (this.inString) {
        if (this.keyText === null) {
          // Most of a body is string content: jump to the quote that closes it (one not escaped by an odd run of
          // backslashes) instead of stepping through it character by character.
          // The string's first character (whether a key may be one JSON.parse moves first), also when it opens a piece.
          if (this.strFirst < 0) this.strFirst = c;
          let from = i;
          if (this.escape) {
            this.escape = false;
            if (!simpleEscape(c)) this.canonical = false;
            from = i + 1;
          }
          let q = chunk.indexOf('"', from);
          while (q >= 0 && backslashesBefore(chunk, q, from) % 2 === 1) q = chunk.indexOf('"', q + 1);
          const end = q < 0 ? n : q;
          if (this.inItem) {
            if (nextBackslash < from) nextBackslash = indexOrEnd(chunk, '\\', from);
            // Each backslash here starts an escape (the one before it was the end of the last, or not a backslash).
            while (nextBackslash < end) {
              this.backslashes = true;
              if (nextBackslash + 1 < n && !simpleEscape(chunk.charCodeAt(nextBackslash + 1))) this.canonical = false;
              nextBackslash = indexOrEnd(chunk, '\\', nextBackslash + 2);
            }
          }
          if (q < 0) {
            this.escape = backslashesBefore(chunk, n, from) % 2 === 1;
            i = n;
            continue;
          }
          this.inString = false;
          this.strEnd = q + shift;
          i = q;
          continue;
        }
        if (this.escape) this.escape = false;
        else if (c === 92 /* \ */) this.escape = true;
        else if (c === 34 /* " */) {
          this.inString = false;
          if (this.keyText !== null) {
            this.lastKey = JSON.parse(`"${this.keyText}"`) as string;
            this.keyText = null;
          }
          continue;
        }
        if (this.keyText !== null) this.keyText += chunk[i];
        continue;
      }
      if (c === 32 || c === 10 || c === 13 || c === 9) {
        if (this.inItem) this.canonical = false;
        continue;
      }
      if (!this.started) {
        this.started = true;
        if (this.at === undefined) {
          if (c !== 91 /* [ */) throw new Error('expected a JSON array');
          this.depth = this.arrayDepth = 1;
          continue;
        }
        if (c !== 123 /* { */) throw new Error(`expected a JSON object holding "${this.at}"`);
        this.depth = 1;
        this.expectingKey = true;
        continue;
      }
      if (this.arrayDepth && this.depth === this.arrayDepth) {
        if (c === 44 /* , */ || c === 93 /* ] */) {
          if (this.inItem) {
            items.push(this.item(this.pending + chunk.slice(itemStart, i)));
            this.pending = '';
            this.inItem = false;
            itemStart = -1;
          }
          if (c === 93) {
            this.done = true;
            return items;
          }
          continue;
        }
        if (!this.inItem) {
          this.inItem = true;
          itemStart = i;
          shift = -i;
          this.canonical = true;
          this.backslashes = false;
          this.keys = 0;
          this.members = [];
          this.isObject = c === 123;
          this.valueStart = -1;
          this.digits = 0;
          this.minus = false;
        }
      }
      if (c === 34) {
        this.inString = true;
        if (this.inItem) {
          this.strStart = i + 1 + shift;
          this.strFirst = -1;
        }
        if (!this.arrayDepth && this.depth === 1 && this.expectingKey) {
          this.keyText = '';
          this.expectingKey = false;
        }
        this.afterColon = false;
        continue;
      }
      if (this.inItem) {
        if (c === 58 /* : */) {
          this.keys++;
          // A key JSON.parse may reorder: an array index ("1") comes first whatever its place.
          if (this.strFirst >= 48 && this.strFirst <= 57) this.canonical = false;
          if (this.isObject && this.depth === this.arrayDepth + 1) {
            this.members.push(this.strStart, this.strEnd);
            this.valueStart = i + 1 + shift;
          }
        } else if ((c === 44 || c === 125) && this.valueStart >= 0 && this.depth === this.arrayDepth + 1) {
          this.members.push(this.valueStart, i + shift);
          this.valueStart = -1;
        }
        // Outside strings digits, '-', '.', '+' and exponents belong to numbers only (true/false hold an 'e', after no digit).
        if (c >= 48 && c <= 57) {
          if (c === 48 && this.minus) this.canonical = false;
          // The rest of the run of digits at once (a visitor is a third digits outside its strings: epoch milliseconds).
          let j = i + 1;
          for (let d = j < n ? chunk.charCodeAt(j) : 0; d >= 48 && d <= 57; d = ++j < n ? chunk.charCodeAt(j) : 0);
          this.digits += j - i;
          if (this.digits > 15) this.canonical = false;
          this.minus = false;
          i = j - 1;
          continue;
        } else {
          if (c === 46 || c === 43 || ((c === 101 || c === 69) && this.digits > 0)) this.canonical = false;
          this.digits = 0;
        }
        this.minus = c === 45;
      }
      if (!this.arrayDepth && this.depth === 1) {
        if (c === 58 /* : */) {
          this.afterColon = true;
          continue;
        }
        if (c === 44) {
          this.expectingKey = true;
          continue;
        }
        if (this.afterColon) {
          this.afterColon = false;
          if (c === 91 && this.lastKey === this.at) {
            this.depth = this.arrayDepth = 2;
            continue;
          }
        }
      }
      if (c === 123 || c === 91) this.depth++;
      else if (c === 125 || c === 93) this.depth--;
    }
    if (this.inItem) this.pending += chunk.slice(itemStart);
    return items;
  }

  private item(text: string): ScannedItem {
    const value = this.opts.parse === false ? undefined : JSON.parse(text);
    // JSON.stringify escapes a lone surrogate; text decoded from UTF-8 has none, but a caller's string may.
    const canonical = this.canonical && (text as unknown as { isWellFormed(): boolean }).isWellFormed();
    return { value, text, canonical, backslashes: this.backslashes, keys: this.keys, members: this.members };
  }

  /** The body ended: it must have held the whole array. */
  end(): void {
    if (!this.done) throw new Error(this.arrayDepth ? 'the JSON array was cut off' : this.at === undefined ? 'expected a JSON array' : `no "${this.at}" array in the response`);
  }
}

/**
 * The JSON text of an object item's top-level member `key` exactly as JSON.stringify(item.value[key]) writes it, when
 * the scan proved the item's text is that (see ScannedItem.canonical); undefined otherwise (the caller
 * stringifies), and for a member that is absent.
 */
export function memberJson(item: ScannedItem, key: string): string | undefined {
  if (!item.canonical) return undefined;
  const m = item.members;
  for (let j = 0; j < m.length; j += 4) {
    if (m[j + 1] - m[j] !== key.length || !item.text.startsWith(key, m[j])) continue;
    // A duplicate key (anywhere in the item) leaves the parsed value with fewer keys than the text has.
    item.distinctKeys ??= countKeys(item.value) === item.keys;
    return item.distinctKeys ? item.text.slice(m[j + 2], m[j + 3]) : undefined;
  }
  return undefined;
}

/**
 * The raw JSON text of an object item's top-level member `key` as it stands in the item (the last one, as JSON.parse
 * keeps the last of duplicates), or undefined when absent: the key of an item not parsed yet.
 */
export function memberText(item: ScannedItem, key: string): string | undefined {
  const m = item.members;
  for (let j = m.length - 4; j >= 0; j -= 4) {
    if (m[j + 1] - m[j] === key.length && item.text.startsWith(key, m[j])) return item.text.slice(m[j + 2], m[j + 3]);
  }
  return undefined;
}

/**
 * The key of an object item not parsed yet, from its member's text, as String(item[key] ?? '') of the parsed item
 * gives it (keyset.ts keyOf).
 */
export function memberKey(item: ScannedItem, key: string): string {
  const t = memberText(item, key);
  if (t === undefined) return '';
  const v: unknown = t.charCodeAt(0) === 34 && t.indexOf('\\') < 0 ? t.slice(1, -1) : JSON.parse(t);
  return String(v ?? '');
}

function countKeys(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  let n = 0;
  if (Array.isArray(v)) {
    for (const e of v) n += countKeys(e);
    return n;
  }
  for (const k in v as Record<string, unknown>) n += 1 + countKeys((v as Record<string, unknown>)[k]);
  return n;
}

/** The escapes JSON.stringify writes itself: \" \\ \b \f \n \r \t (not \/ nor \u). */
const simpleEscape = (c: number) => c === 34 || c === 92 || c === 98 || c === 102 || c === 110 || c === 114 || c === 116;

function indexOrEnd(text: string, s: string, from: number): number {
  const k = text.indexOf(s, from);
  return k < 0 ? text.length : k;
}

/** How many backslashes come right before `end` in `text`, not looking before `from`. */
function backslashesBefore(text: string, end: number, from: number): number {
  let k = end - 1;
  while (k >= from && text.charCodeAt(k) === 92) k--;
  return end - 1 - k;
}
