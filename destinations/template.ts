import jsone from 'json-e';
import { closestKnown } from '../common/strict-object';
import type { ChangeRow } from '../warehouse/change-log';
import { changeId } from './signing';
import type { ChangeContext } from './types';

/**
 * A destination's body template: JSON with json-e operators (https://json-e.js.org), rendered once per change
 * with its `ChangeContext` (`id`, `table`, `source_id`, `op`, `key`, `row`, `old_row`, `version`, `landed_at`).
 * json-e is deterministic and has no eval: a whole value `{"$eval": "row.amount"}` keeps its type (a number stays
 * a number), a string interpolates (`"Order ${row.id} paid"`), and `$if`, `$map`, `$let`, `$merge`, `$switch`…
 * combine them. `now` is the change's `landed_at`, so `$fromNow` renders the same for the same change.
 * No template (`undefined`): the body is the ChangeContext itself.
 */

/** json-e's operators (json-e 4.8): any other `$name` key is refused at create time. */
const OPERATORS = [
  '$eval', '$flatten', '$flattenDeep', '$fromNow', '$if', '$json', '$let', '$map', '$reduce', '$find', '$match',
  '$switch', '$merge', '$mergeDeep', '$reverse', '$sort',
] as const;

export interface TemplateProblem {
  /** Where in the template, from `body`: `body.text`, `body.blocks[0].text`. */
  path: string;
  message: string;
}

const keyPath = (path: string, key: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`);

type JsoneError = Error & { location?: string[] };
const isJsoneError = (e: unknown): e is JsoneError => e instanceof Error && ['SyntaxError', 'TemplateError', 'InterpreterError', 'BuiltinError'].includes(e.name) && Array.isArray((e as JsoneError).location);

// json-e's own parser (the package exports only its renderer). Its tokenizer is configured inside json-e's
// index.js; this is the same configuration (json-e 4.8), so an expression parses here exactly as it renders.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Parser } = require('json-e/src/parser') as { Parser: new (tokenizer: unknown, source: string) => { parse(): AstNode | undefined; current_token: Token | null } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Tokenizer = require('json-e/src/tokenizer') as new (o: unknown) => unknown;
interface Token { kind: string; value: string; start: number; end: number }
interface AstNode { constructorName: string; token?: Token; left?: AstNode | null; right?: AstNode | null; expr?: AstNode; list?: AstNode[]; args?: AstNode[]; obj?: Record<string, AstNode>; name?: AstNode; arr?: AstNode; isInterval?: boolean }
const tokenizer = new Tokenizer({
  ignore: '\\s+',
  patterns: {
    number: '[0-9]+(?:\\.[0-9]+)?',
    identifier: '[a-zA-Z_][a-zA-Z_0-9]*',
    string: '\'[^\']*\'|"[^"]*"',
    true: 'true(?![a-zA-Z_0-9])',
    false: 'false(?![a-zA-Z_0-9])',
    in: 'in(?![a-zA-Z_0-9])',
    null: 'null(?![a-zA-Z_0-9])',
  },
  tokens: ['**', ...'+-*/[].(){}:,'.split(''), '>=', '<=', '<', '>', '==', '!=', '!', '&&', '||', 'true', 'false', 'in', 'null', 'number', 'identifier', 'string'],
});

/** json-e's parser leaves a hole (undefined) where an operand is missing (`a +`, `-`, `f(1,)`): found here. */
function incomplete(node: AstNode | null | undefined): boolean {
  if (!node) return true;
  switch (node.constructorName) {
    case 'BinOp':
      return incomplete(node.left) || incomplete(node.right);
    case 'UnaryOp':
      return incomplete(node.expr);
    case 'List':
      return (node.list ?? []).some(incomplete);
    case 'FunctionCall':
      return incomplete(node.name) || (node.args ?? []).some(incomplete);
    case 'Object':
      return Object.values(node.obj ?? {}).some(incomplete);
    case 'ValueAccess':
      // `a[1:]`, `a[:2]`: an interval's missing side is null on purpose.
      return incomplete(node.arr) || (node.left != null && incomplete(node.left)) || (node.right != null && incomplete(node.right));
    default:
      return false;
  }
}

/** Parses one expression; with `terminator`, up to it. The problem, or the offset of the terminator. */
function parseExpression(source: string, terminator?: string): { problem: string } | { end: number } {
  try {
    const parser = new Parser(tokenizer, source);
    const tree = parser.parse();
    const next = parser.current_token;
    if (terminator) {
      if (!next) return { problem: `unterminated \${..} expression` };
      if (next.kind !== terminator) return { problem: `unexpected "${next.value}" at offset ${next.start}` };
    } else if (next) return { problem: `unexpected "${next.value}" at offset ${next.start}` };
    if (incomplete(tree)) return { problem: 'the expression is incomplete (an operand is missing)' };
    return { end: next ? next.start : source.length };
  } catch (err) {
    // json-e 4.8's parser reads past the end of `a >` (a TypeError): the expression ends too early.
    return { problem: err instanceof TypeError ? 'the expression ends too early (an operand is missing)' : (err as Error).message };
  }
}

/** The syntax problem of a json-e expression (`row.amount > 100`), or null. */
function expressionProblem(expr: string): string | null {
  const r = parseExpression(expr);
  return 'problem' in r ? `syntax error: ${r.problem}` : null;
}

/** The syntax problem of a string's `${…}` parts (as json-e interpolates them; `$${` is a literal `${`), or null. */
function interpolationProblem(text: string): string | null {
  let remaining = text;
  let offset: number;
  while ((offset = remaining.search(/\$?\$\{/)) !== -1) {
    if (remaining[offset + 1] === '$') {
      remaining = remaining.slice(offset + 3);
      continue;
    }
    const r = parseExpression(remaining.slice(offset + 2), '}');
    if ('problem' in r) return `syntax error: ${r.problem}`;
    remaining = remaining.slice(offset + 2 + r.end + 1);
  }
  return null;
}

/** Operator keys whose value is an expression (not a template). */
const EXPRESSION_OPERATORS = new Set(['$eval', '$if']);

/** Walks every branch (including `$if`'s untaken one) for syntax errors and unknown operators. */
function walk(node: unknown, path: string, out: TemplateProblem[]): void {
  if (out.length) return;
  if (typeof node === 'string') {
    if (/\$\{/.test(node)) {
      const p = interpolationProblem(node);
      if (p) out.push({ path, message: `${p} in "${node}"` });
    }
    return;
  }
  if (Array.isArray(node)) {
    node.forEach((v, i) => walk(v, `${path}[${i}]`, out));
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  const operators = Object.keys(obj).filter((k) => /^\$[A-Za-z][A-Za-z0-9]*$/.test(k));
  for (const k of operators) {
    if (!(OPERATORS as readonly string[]).includes(k)) {
      const best = closestKnown(k, OPERATORS);
      out.push({
        path: keyPath(path, k),
        message: `unknown json-e operator ${k}${best ? `: did you mean ${best}?` : ''} (a literal key starting with $ is written $${k})`,
      });
      return;
    }
  }
  if (operators.length > 1) {
    out.push({ path, message: `only one json-e operator per object (found ${operators.join(', ')})` });
    return;
  }
  for (const k of operators) {
    const v = obj[k];
    if (EXPRESSION_OPERATORS.has(k) && typeof v === 'string') {
      const p = expressionProblem(v);
      if (p) {
        out.push({ path: keyPath(path, k), message: `${p} in "${v}"` });
        return;
      }
    }
  }
  if (obj.$match && typeof obj.$match === 'object' && !Array.isArray(obj.$match)) {
    for (const cond of Object.keys(obj.$match)) {
      const p = expressionProblem(cond);
      if (p) {
        out.push({ path: keyPath(keyPath(path, '$match'), cond), message: `${p} in "${cond}"` });
        return;
      }
    }
  }
  if (obj.$switch && typeof obj.$switch === 'object' && !Array.isArray(obj.$switch)) {
    for (const cond of Object.keys(obj.$switch)) {
      if (cond === '$default') continue;
      const p = expressionProblem(cond);
      if (p) {
        out.push({ path: keyPath(keyPath(path, '$switch'), cond), message: `${p} in "${cond}"` });
        return;
      }
    }
  }
  for (const [k, v] of Object.entries(obj)) {
    // Keys interpolate too (`"${row.kind}": 1`); operator and $$-escaped keys do not.
    if (!k.startsWith('$$') && !/^\$[A-Za-z]/.test(k) && /\$\{/.test(k)) {
      const p = interpolationProblem(k);
      if (p) {
        out.push({ path: keyPath(path, k), message: `${p} in the key "${k}"` });
        return;
      }
    }
    if (k === '$match' || k === '$switch') {
      if (v && typeof v === 'object' && !Array.isArray(v)) for (const [c, t] of Object.entries(v)) walk(t, keyPath(keyPath(path, k), c), out);
      else walk(v, keyPath(path, k), out);
    } else if (!EXPRESSION_OPERATORS.has(k) || typeof v !== 'string') walk(v, keyPath(path, k), out);
  }
}

/** The context a template is checked with at create time: every name a change has, with empty data. */
export const SAMPLE_CONTEXT: ChangeContext = {
  id: 'chg_00000000000000000000000000000000',
  table: 'sample_table',
  source_id: '00000000-0000-0000-0000-000000000000',
  op: 'insert',
  key: {},
  row: {},
  old_row: null,
  version: '0',
  landed_at: '2026-01-01 00:00:00.000000',
};

/** The path json-e gives an error (`.text`, `[0]`), under `body`. */
const errorPath = (err: JsoneError) => `body${(err.location ?? []).join('')}`;

/**
 * The first problem of a body template, or null: a JSON value (no functions, no undefined), json-e syntax in
 * every branch, known operators only, then rendered with a sample change. A render error that only the data
 * decides (a column the sample row lacks, a comparison of the wrong types) is not a problem here; an unknown
 * top-level name (`rows.id` for `row.id`) or a misused operator is.
 */
export function templateError(template: unknown): TemplateProblem | null {
  if (template === undefined) return null;
  try {
    // A JSON body came through JSON already; this refuses what a caller in code could pass (functions, cycles).
    JSON.stringify(template);
  } catch (err) {
    return { path: 'body', message: `the template is not JSON: ${(err as Error).message}` };
  }
  const out: TemplateProblem[] = [];
  walk(template, 'body', out);
  if (out.length) return out[0];
  try {
    renderChange(template, SAMPLE_CONTEXT);
    return null;
  } catch (err) {
    if (!isJsoneError(err)) return { path: 'body', message: (err as Error).message };
    const dataDependent = err.name === 'InterpreterError' && !/^unknown context value/.test(err.message);
    if (dataDependent || err.name === 'BuiltinError') return null;
    return { path: errorPath(err), message: err.message };
  }
}

/** Renders the body for one change. Throws json-e's error (with its path) when the template fails on this change. */
export function renderChange(template: unknown, ctx: ChangeContext): unknown {
  if (template === undefined) return ctx;
  // A bare string or number renders to itself through json-e too; objects and arrays are the usual case.
  return jsone(template as Record<string, unknown>, { ...ctx, now: isoLandedAt(ctx.landed_at) });
}

/** A render failure as the delivery logs it: `body.text: object has no property "amount"`. */
export function renderErrorMessage(err: unknown): string {
  if (isJsoneError(err)) return `${errorPath(err)}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** ClickHouse's `2026-01-01 00:00:00.000000` (UTC) as ISO 8601, for json-e's `now`. */
function isoLandedAt(landedAt: string): string {
  const iso = landedAt.includes('T') ? landedAt : `${landedAt.replace(' ', 'T')}Z`;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? landedAt : new Date(t).toISOString();
}

const parseObject = (text: string, what: string): Record<string, unknown> => {
  const v = JSON.parse(text) as unknown;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`the change's ${what} is not a JSON object`);
  return v as Record<string, unknown>;
};

/** A change-log row as the template sees it: key, row and old_row parsed. */
export function changeContext(row: ChangeRow): ChangeContext {
  return {
    id: changeId(row),
    table: row.table,
    source_id: row.source_id,
    op: row.op,
    key: parseObject(row.key, 'key'),
    row: parseObject(row.row, 'row'),
    old_row: row.old_row === null || row.old_row === undefined ? null : parseObject(row.old_row, 'old_row'),
    version: row.version,
    landed_at: row.landed_at,
  };
}
