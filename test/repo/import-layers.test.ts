/**
 * Layers that do not loop: no part of src/ (a folder, or a file at its top) imports — directly or
 * through other parts, type imports included — a part that imports it back; nor does any file of
 * bench/ or tools/ (each file a part of its own there). Imports are read with the TypeScript
 * compiler's own parser, so `import type`, re-exports and dynamic imports all count.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/processes.js';

const SRC = join(ROOT, 'src');
/** Outside src/, every file is a part: bench and tools are flat collections of modules. */
const FILE_PARTS = ['bench', 'tools'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : name.endsWith('.ts') ? [path] : [];
  });
}

/** `chain` for src/chain/x.ts, `reasons.ts` for src/reasons.ts, `bench/lib/x.ts` for itself. */
function partOf(file: string): string {
  const path = relative(ROOT, file).split(sep);
  if (path[0] === 'src') return path[1] as string;
  return path.join('/');
}

function importsOf(file: string): string[] {
  const source = ts.createSourceFile(
    file,
    readFileSync(file, 'utf8'),
    ts.ScriptTarget.ES2022,
    true,
  );
  const specifiers: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      specifiers.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      specifiers.push(node.arguments[0].text);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      specifiers.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return specifiers
    .filter((s) => s.startsWith('.'))
    .map((s) => normalize(join(dirname(file), s.replace(/\.js$/, '.ts'))));
}

/** Part → the parts it imports, each with one file-level example. */
function partGraph(files: readonly string[]): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of files) {
    const from = partOf(file);
    const edges = graph.get(from) ?? new Map<string, string>();
    graph.set(from, edges);
    for (const target of importsOf(file)) {
      const to = partOf(target);
      if (to !== from && !edges.has(to))
        edges.set(to, `${relative(ROOT, file)} → ${relative(ROOT, target)}`);
    }
  }
  return graph;
}

/** Strongly connected groups of more than one part (Tarjan). */
function loops(graph: Map<string, Map<string, string>>): string[][] {
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    order.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!order.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, order.get(w) as number));
    }
    if (low.get(v) === order.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of graph.keys()) if (!order.has(v)) visit(v);
  return found;
}

describe('layers of src/', () => {
  it('finds loops when there are some (the checker itself works)', () => {
    const graph = new Map([
      ['a', new Map([['b', 'a→b']])],
      ['b', new Map([['c', 'b→c']])],
      ['c', new Map([['a', 'c→a']])],
      ['d', new Map([['a', 'd→a']])],
    ]);
    assert.deepEqual(loops(graph), [['a', 'b', 'c']]);
  });

  it('has no part that imports, directly or not, a part that imports it back', () => {
    assertNoLoops(partGraph(sourceFiles(SRC)), 10);
  });
});

describe('layers of bench/ and tools/', () => {
  it('have no file that imports, directly or not, a file that imports it back', () => {
    for (const dir of FILE_PARTS) assertNoLoops(partGraph(sourceFiles(join(ROOT, dir))), 1);
  });

  it('are not imported by src/ (the service depends on neither)', () => {
    const outside = sourceFiles(SRC).flatMap((file) =>
      importsOf(file)
        .filter((target) => relative(SRC, target).startsWith('..'))
        .map((target) => `${relative(ROOT, file)} → ${relative(ROOT, target)}`),
    );
    assert.deepEqual(outside, []);
  });
});

function assertNoLoops(graph: Map<string, Map<string, string>>, atLeast: number): void {
  assert.ok(graph.size > atLeast, 'the whole tree was read');
  {
    const found = loops(graph);
    const explain = found.map((group) => {
      const edges = group.flatMap((from) =>
        group.filter((to) => graph.get(from)?.has(to)).map((to) => `  ${graph.get(from)?.get(to)}`),
      );
      return `${group.join(' ⇄ ')}\n${edges.join('\n')}`;
    });
    assert.deepEqual(explain, [], `import loops:\n${explain.join('\n')}`);
  }
}
