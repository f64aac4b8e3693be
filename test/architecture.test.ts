// The one-way import rule of docs/architecture.md, enforced: every import of every .ts file under
// kernels/, engine/ and src/ (static `import … from`, `export … from`, side-effect `import '…'`, dynamic
// `import()` and `typeof import()`), resolved to a repository path and checked against the rules below.
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(import.meta.dirname, '..');
const SCANNED = ['kernels', 'engine', 'src'];

interface Rule {
  /** Files this rule applies to (a path prefix, repository-relative, posix). */
  from: string;
  /** Except files under these prefixes. */
  fromExcept?: string[];
  /** Imports of files under these prefixes are violations… */
  forbid: string[];
  /** …unless they are under one of these. */
  allow?: string[];
  why: string;
}

export const RULES: Rule[] = [
  { from: 'kernels/', forbid: ['engine/', 'src/'], why: 'kernels import nothing of engine/ or src/' },
  { from: 'engine/', forbid: ['src/'], why: 'engine/ imports nothing of src/' },
  { from: 'src/util/', forbid: ['src/'], allow: ['src/util/'], why: 'src/util imports nothing else of src/' },
  { from: 'src/io/', forbid: ['engine/', 'src/'], allow: ['src/io/', 'src/util/'], why: 'src/io (file formats) imports nothing of engine/ and only src/util of src/' },
  { from: 'src/data/', forbid: ['src/model/', 'src/train/', 'src/experiments/', 'src/cli/'], why: 'src/data imports nothing of src/model, src/train, src/experiments, src/cli' },
  { from: 'src/model/', forbid: ['src/data/', 'src/train/', 'src/experiments/', 'src/cli/'], why: 'src/model imports nothing of src/data, src/train, src/experiments, src/cli' },
  { from: '', fromExcept: ['src/cli/'], forbid: ['src/cli/'], why: 'nothing imports src/cli except src/cli' },
];

/** Imports that break a rule today and are allowed until they move, as "from -> to". */
export const KNOWN_EXCEPTIONS = new Set<string>([]);

export interface Violation {
  from: string;
  to: string;
  specifier: string;
  rule: string;
}

/** Every module specifier a TypeScript source imports or re-exports, dynamic imports included. */
export function specifiersOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The repository path a relative specifier of `from` resolves to; null for packages and node: builtins. */
export function resolveSpecifier(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
}

/** Checks a file set (repository-relative posix path → source) against RULES, minus the known exceptions. */
export function checkImports(files: ReadonlyMap<string, string>, rules: Rule[] = RULES, exceptions: ReadonlySet<string> = KNOWN_EXCEPTIONS): Violation[] {
  const out: Violation[] = [];
  for (const [from, source] of files) {
    for (const specifier of specifiersOf(source)) {
      const to = resolveSpecifier(from, specifier);
      if (to === null) continue;
      if (to.startsWith('..') || path.posix.isAbsolute(to)) {
        out.push({ from, to, specifier, rule: 'imports stay inside the repository' });
        continue;
      }
      if (exceptions.has(`${from} -> ${to}`)) continue;
      for (const r of rules) {
        if (!from.startsWith(r.from) || r.fromExcept?.some((p) => from.startsWith(p))) continue;
        if (r.forbid.some((p) => to.startsWith(p)) && !r.allow?.some((p) => to.startsWith(p))) out.push({ from, to, specifier, rule: r.why });
      }
    }
  }
  return out;
}

function tsFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function repoFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const d of SCANNED) for (const f of tsFiles(path.join(ROOT, d))) files.set(path.relative(ROOT, f).split(path.sep).join('/'), fs.readFileSync(f, 'utf8'));
  return files;
}

describe('the one-way import rule (docs/architecture.md)', () => {
  it('holds for every import under kernels/, engine/ and src/', () => {
    const files = repoFiles();
    expect(files.size).toBeGreaterThan(50);
    const bad = checkImports(files).map((v) => `${v.from} imports ${v.specifier} (${v.to}): ${v.rule}`);
    expect(bad).toEqual([]);
  });

  it('every known exception still exists (remove it from the list once the import has moved)', () => {
    const files = repoFiles();
    for (const e of KNOWN_EXCEPTIONS) {
      const [from, to] = e.split(' -> ') as [string, string];
      const targets = specifiersOf(files.get(from) ?? '').map((s) => resolveSpecifier(from, s));
      expect(targets, e).toContain(to);
    }
  });
});

describe('the import checker', () => {
  it('finds static, re-exported, side-effect, multi-line, type-only and dynamic imports', () => {
    const src = [
      "import { a } from './a.ts';",
      "import type { B } from '../b.ts';",
      "import * as c from './c.ts';",
      "import './side.ts';",
      'import {',
      '  d,',
      '  e,',
      "} from './de.ts';",
      "export { f } from './f.ts';",
      "export * from './g.ts';",
      "const h = await import('./h.ts');",
      "let i: typeof import('./i.ts').I;",
      "import fs from 'node:fs';",
      "import ts from 'typescript';",
      "const s = `import x from './not-code.ts'`; // a template string is not an import",
    ].join('\n');
    const got = specifiersOf(src);
    for (const s of ['./a.ts', '../b.ts', './c.ts', './side.ts', './de.ts', './f.ts', './g.ts', './h.ts', './i.ts', 'node:fs', 'typescript']) expect(got, s).toContain(s);
    expect(got).not.toContain('./not-code.ts');
  });

  it('reports each broken rule on a synthetic file set, and nothing for allowed imports', () => {
    const files = new Map<string, string>([
      ['kernels/k.ts', "import { e } from '../engine/engine.ts';\nimport { s } from './spec.ts';"],
      ['engine/e.ts', "import { x } from '../kernels/k.ts';\nconst m = await import('../src/model/gpt.ts');"],
      ['engine/ops/o.ts', "export { y } from '../../src/io/checkpoint.ts';"],
      ['src/util/u.ts', "import { g } from '../model/gpt.ts';"],
      ['src/io/io.ts', "import { u } from '../util/u.ts';\nimport { t } from '../../engine/tensor.ts';"],
      ['src/data/procedural/d.ts', "import { GPT } from '../../model/gpt.ts';\nimport { r } from './rng.ts';"],
      ['src/data/tasks/t.ts', "import type { C } from '../../train/config.ts';\nimport { E } from '../../experiments/e.ts';"],
      ['src/model/gpt.ts', "import { MT19937 } from '../data/procedural/rng.ts';\nimport { c } from '../io/checkpoint.ts';\nimport { o } from '../../engine/ops/o.ts';"],
      ['src/model/hf_names.ts', "import { MT19937 } from '../data/procedural/rng.ts';"],
      ['src/train/trainer.ts', "import { main } from '../cli/main.ts';\nimport { GPT } from '../model/gpt.ts';\nimport { e } from '../../engine/engine.ts';"],
      ['src/experiments/x.ts', "import { T } from '../train/trainer.ts';\nimport { D } from '../data/tasks/t.ts';"],
      ['src/cli/main.ts', "import { run } from './train.ts';\nimport { x } from '../experiments/x.ts';"],
      ['src/cli/other.ts', "import { y } from '../../../elsewhere.ts';"],
    ]);
    const exceptions = new Set(['src/model/hf_names.ts -> src/data/procedural/rng.ts']);
    const got = checkImports(files, RULES, exceptions).map((v) => `${v.from} -> ${v.to}`);
    expect(got.sort()).toEqual(
      [
        'kernels/k.ts -> engine/engine.ts',
        'engine/e.ts -> src/model/gpt.ts',
        'engine/ops/o.ts -> src/io/checkpoint.ts',
        'src/util/u.ts -> src/model/gpt.ts',
        'src/io/io.ts -> engine/tensor.ts',
        'src/data/procedural/d.ts -> src/model/gpt.ts',
        'src/data/tasks/t.ts -> src/train/config.ts',
        'src/data/tasks/t.ts -> src/experiments/e.ts',
        'src/model/gpt.ts -> src/data/procedural/rng.ts', // only hf_names.ts has the exception
        'src/train/trainer.ts -> src/cli/main.ts',
        'src/cli/other.ts -> ../elsewhere.ts',
      ].sort(),
    );
    // Without the exception list, hf_names.ts is reported too.
    expect(checkImports(files, RULES, new Set()).map((v) => v.from)).toContain('src/model/hf_names.ts');
  });
});
