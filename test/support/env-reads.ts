/**
 * Every environment variable the non-test code reads, found by parsing it (the TypeScript parser, no type check):
 * `process.env.NAME`, `process.env['NAME']`, `const { NAME } = process.env`, `'NAME' in process.env`, and the same on
 * a variable or parameter that holds the environment (`env: NodeJS.ProcessEnv = process.env`, `const e = process.env`).
 *
 * A read by a computed key (`process.env[name]`) is followed to the names it can be: a string constant (of the file
 * or imported from another), every string value of a constant object (`QUERY_LIMIT_ENV[key]`), every string literal
 * given to that property in the scanned code (`tool.envVar`), or, for a function's parameter, the argument at every
 * call of that function in the scanned code (`rateFromEnv('TRIBUTARY_STRIPE_TEST_RPS', 25)`). A key that cannot be
 * followed is reported as unresolved, so a new kind of read fails the test instead of escaping it.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface EnvRead {
  name: string;
  /** `file:line`, relative to the repository. */
  at: string;
}

export interface EnvScan {
  reads: EnvRead[];
  /** Computed keys that could not be followed to names. */
  unresolved: string[];
  files: string[];
}

/** Folders that hold no code the platform runs (tests, dev scripts, the console's browser bundle, state). */
const SKIP = new Set(['node_modules', 'test', 'scripts', 'console', '.git', '.data', '.tools', '.ci', 'dist', 'docker']);

function sourceFiles(root: string, dir = root): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return dir === root && SKIP.has(e.name) ? [] : e.name === 'node_modules' ? [] : sourceFiles(root, path.join(dir, e.name));
    return /\.tsx?$/.test(e.name) && !/\.d\.ts$/.test(e.name) ? [path.join(dir, e.name)] : [];
  });
}

const unwrap = (e: ts.Expression): ts.Expression =>
  ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isNonNullExpression(e) ? unwrap(e.expression) : e;

const isProcessEnv = (e: ts.Expression) => {
  const u = unwrap(e);
  return ts.isPropertyAccessExpression(u) && u.name.text === 'env' && ts.isIdentifier(u.expression) && u.expression.text === 'process';
};

export function scanEnvReads(root: string): EnvScan {
  const files = sourceFiles(root);
  const parsed = new Map(files.map((f) => [f, ts.createSourceFile(f, fs.readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true)]));
  const rel = (sf: ts.SourceFile, node: ts.Node) => `${path.relative(root, sf.fileName)}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;

  const walk = (node: ts.Node, visit: (n: ts.Node) => void) => {
    visit(node);
    node.forEachChild((c) => walk(c, visit));
  };
  const allNodes = (sf: ts.SourceFile) => {
    const out: ts.Node[] = [];
    walk(sf, (n) => out.push(n));
    return out;
  };
  const nodes = new Map([...parsed].map(([f, sf]) => [f, allNodes(sf)]));

  /** A top-level or local `const NAME = …` of the file, by name (scopes ignored: the code does not shadow these). */
  const constInit = (sf: ts.SourceFile, name: string): ts.Expression | undefined => {
    for (const n of nodes.get(sf.fileName)!) if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name && n.initializer) return n.initializer;
    return undefined;
  };
  /** The file an imported name comes from (relative imports only), and its name there. */
  const importedFrom = (sf: ts.SourceFile, name: string): { file: ts.SourceFile; name: string } | undefined => {
    for (const st of sf.statements) {
      if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier) || !st.moduleSpecifier.text.startsWith('.')) continue;
      const named = st.importClause?.namedBindings;
      if (!named || !ts.isNamedImports(named)) continue;
      const spec = named.elements.find((el) => el.name.text === name);
      if (!spec) continue;
      const base = path.resolve(path.dirname(sf.fileName), st.moduleSpecifier.text);
      const target = [`${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts')].map((p) => parsed.get(p)).find(Boolean);
      if (target) return { file: target, name: spec.propertyName?.text ?? name };
    }
    return undefined;
  };
  /** The parameter an identifier names in its enclosing functions, with that function's name and the index. */
  const parameterOf = (id: ts.Identifier): { fn: string; index: number } | undefined => {
    for (let p: ts.Node | undefined = id.parent; p; p = p.parent) {
      if (!ts.isFunctionLike(p)) continue;
      const index = p.parameters.findIndex((prm) => ts.isIdentifier(prm.name) && prm.name.text === id.text);
      if (index < 0) continue;
      const fnName = p.name && ts.isIdentifier(p.name) ? p.name.text : ts.isVariableDeclaration(p.parent) && ts.isIdentifier(p.parent.name) ? p.parent.name.text : undefined;
      return fnName ? { fn: fnName, index } : undefined;
    }
    return undefined;
  };

  /** The names an expression can evaluate to; undefined: cannot tell. */
  const resolve = (sf: ts.SourceFile, expr: ts.Expression, depth = 0): string[] | undefined => {
    if (depth > 6) return undefined;
    const e = unwrap(expr);
    if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
    if (ts.isConditionalExpression(e)) {
      const [a, b] = [resolve(sf, e.whenTrue, depth + 1), resolve(sf, e.whenFalse, depth + 1)];
      return a && b ? [...a, ...b] : undefined;
    }
    if (ts.isIdentifier(e)) {
      const param = parameterOf(e);
      if (param) {
        const out: string[] = [];
        let calls = 0;
        for (const [f, ns] of nodes) {
          for (const n of ns) {
            if (!ts.isCallExpression(n) || !ts.isIdentifier(n.expression) || n.expression.text !== param.fn) continue;
            calls++;
            const arg = n.arguments[param.index];
            const got = arg ? resolve(parsed.get(f)!, arg, depth + 1) : [];
            if (!got) return undefined;
            out.push(...got);
          }
        }
        return calls ? out : undefined;
      }
      const init = constInit(sf, e.text);
      if (init) return resolve(sf, init, depth + 1);
      const imp = importedFrom(sf, e.text);
      return imp ? resolveConst(imp.file, imp.name, depth) : undefined;
    }
    if (ts.isElementAccessExpression(e)) {
      // OBJ[key] of a constant object: any of its string values.
      const obj = unwrap(e.expression);
      if (!ts.isIdentifier(obj)) return undefined;
      const init = constInit(sf, obj.text) ?? (() => {
        const imp = importedFrom(sf, obj.text);
        return imp ? constInit(imp.file, imp.name) : undefined;
      })();
      const lit = init && unwrap(init);
      if (!lit || !ts.isObjectLiteralExpression(lit)) return undefined;
      const out: string[] = [];
      for (const p of lit.properties) {
        const v = ts.isPropertyAssignment(p) ? unwrap(p.initializer) : undefined;
        if (!v || !(ts.isStringLiteral(v) || ts.isNoSubstitutionTemplateLiteral(v))) return undefined;
        out.push(v.text);
      }
      return out;
    }
    if (ts.isPropertyAccessExpression(e)) {
      // x.prop: every string literal given to `prop` in the scanned code.
      const prop = e.name.text;
      const out: string[] = [];
      for (const ns of nodes.values()) {
        for (const n of ns) {
          if (ts.isPropertyAssignment(n) && (ts.isIdentifier(n.name) || ts.isStringLiteral(n.name)) && n.name.text === prop) {
            const v = unwrap(n.initializer);
            if (ts.isStringLiteral(v) || ts.isNoSubstitutionTemplateLiteral(v)) out.push(v.text);
          }
        }
      }
      return out.length ? out : undefined;
    }
    return undefined;
  };
  const resolveConst = (file: ts.SourceFile, name: string, depth: number) => {
    const init = constInit(file, name);
    return init ? resolve(file, init, depth + 1) : undefined;
  };

  const reads: EnvRead[] = [];
  const unresolved: string[] = [];
  for (const [f, sf] of parsed) {
    // Names holding the environment in this file: parameters typed NodeJS.ProcessEnv, and variables set to process.env.
    const holders = new Set<string>();
    for (const n of nodes.get(f)!) {
      if ((ts.isParameter(n) || ts.isVariableDeclaration(n)) && ts.isIdentifier(n.name)) {
        const typed = n.type && /\bProcessEnv\b/.test(n.type.getText(sf));
        if (typed || (n.initializer && isProcessEnv(n.initializer))) holders.add(n.name.text);
      }
    }
    const isEnv = (e: ts.Expression) => isProcessEnv(e) || (ts.isIdentifier(unwrap(e)) && holders.has((unwrap(e) as ts.Identifier).text));
    const add = (names: string[] | undefined, node: ts.Node, what: string) => {
      if (!names) unresolved.push(`${rel(sf, node)}: ${what}`);
      else for (const name of names) reads.push({ name, at: rel(sf, node) });
    };
    for (const n of nodes.get(f)!) {
      const written = (x: ts.Node) => ts.isBinaryExpression(x.parent) && x.parent.left === x && x.parent.operatorToken.kind === ts.SyntaxKind.EqualsToken;
      if (ts.isPropertyAccessExpression(n) && isEnv(n.expression) && !written(n)) {
        reads.push({ name: n.name.text, at: rel(sf, n) });
      } else if (ts.isElementAccessExpression(n) && isEnv(n.expression) && !written(n)) {
        add(resolve(sf, n.argumentExpression), n, n.getText(sf));
      } else if (ts.isVariableDeclaration(n) && ts.isObjectBindingPattern(n.name) && n.initializer && isEnv(n.initializer)) {
        for (const el of n.name.elements) {
          if (el.dotDotDotToken) unresolved.push(`${rel(sf, el)}: ...rest of the environment`);
          else {
            const key = el.propertyName ?? el.name;
            add(ts.isIdentifier(key) || ts.isStringLiteral(key) ? [key.text] : ts.isComputedPropertyName(key) ? resolve(sf, key.expression) : undefined, el, el.getText(sf));
          }
        }
      } else if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.InKeyword && isEnv(n.right)) {
        add(resolve(sf, n.left), n, n.getText(sf));
      }
    }
  }
  return { reads, unresolved, files: files.map((f) => path.relative(root, f)) };
}
