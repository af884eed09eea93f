/**
 * The items of one JSON array inside a response body, parsed one at a time as the bytes arrive, so a
 * page of any size is never held whole: either the body itself is the array (`at` undefined: Pendo's
 * list endpoints), or it is an object whose top-level key `at` holds it (`results` of an aggregation).
 * Each item's text is cut out by a scanner that only tracks strings and nesting, then given to
 * JSON.parse — far faster than a token-by-token streaming parser, and as strict.
 */
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

  constructor(private readonly at?: string) {}

  /** Feeds the next piece of text; returns the items completed in it. */
  push(chunk: string): unknown[] {
    const items: unknown[] = [];
    if (this.done) return items;
    let itemStart = this.inItem ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.inString) {
        if (this.keyText === null) {
          // Most of a body is string content: jump to the quote that closes it (one not escaped by an odd run of
          // backslashes) instead of stepping through it character by character.
          let from = i;
          if (this.escape) {
            this.escape = false;
            from = i + 1;
          }
          let q = chunk.indexOf('"', from);
          while (q >= 0 && backslashesBefore(chunk, q, from) % 2 === 1) q = chunk.indexOf('"', q + 1);
          if (q < 0) {
            this.escape = backslashesBefore(chunk, chunk.length, from) % 2 === 1;
            i = chunk.length;
            continue;
          }
          this.inString = false;
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
      if (c === 32 || c === 10 || c === 13 || c === 9) continue;
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
            items.push(JSON.parse(this.pending + chunk.slice(itemStart, i)));
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
        }
      }
      if (c === 34) {
        this.inString = true;
        if (!this.arrayDepth && this.depth === 1 && this.expectingKey) {
          this.keyText = '';
          this.expectingKey = false;
        }
        this.afterColon = false;
        continue;
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

  /** The body ended: it must have held the whole array. */
  end(): void {
    if (!this.done) throw new Error(this.arrayDepth ? 'the JSON array was cut off' : this.at === undefined ? 'expected a JSON array' : `no "${this.at}" array in the response`);
  }
}

/** How many backslashes come right before `end` in `text`, not looking before `from`. */
function backslashesBefore(text: string, end: number, from: number): number {
  let k = end - 1;
  while (k >= from && text.charCodeAt(k) === 92) k--;
  return end - 1 - k;
}
