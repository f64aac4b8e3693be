// The embedded code corpus: the Python standard library of the machine's Python (the PSF licence),
// written as CodeParrot-clean records {repo_name, path, copies, size, content, license} in gzipped
// JSON-lines shards `file-000000000001.json.gz`, … under `codeparrot-clean-train/` and
// `codeparrot-clean-valid/`, which codeparrotDocuments reads. The split is by a hash of the path, so a
// file keeps its split from one Python build to the next.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Progress, type ProgressOptions } from '../../../util/progress.ts';
import { CorpusError } from '../files.ts';
import { buildFolder, pad, ShardWriter, type BuildOptions, type BuildReport } from './common.ts';

export interface CodeOptions extends BuildOptions {
  /** The corpora folder; the corpus goes to `<out>/codeparrot`. */
  out: string;
  /** The Python whose standard library is read (default `python3`). */
  python?: string;
  /** Keep the test folders (`test`, `tests`, `idle_test`); they are left out by default. */
  includeTests?: boolean;
  /** Characters of JSON text per shard before a new shard starts (default 8,000,000). */
  shardChars?: number;
  /** Where the progress line goes (default: none). */
  progress?: ProgressOptions['stream'];
}

export const CODE_LICENSE = 'PSF-2.0';
/** Folders never read: compiled caches, third-party packages, extension modules, build configuration. */
const SKIPPED_DIRS = new Set(['__pycache__', 'site-packages', 'dist-packages', 'lib-dynload']);
const TEST_DIRS = new Set(['test', 'tests', 'idle_test']);

/** The standard library folder and version of a Python, asked through `sysconfig`. */
export function pythonStdlib(python = 'python3'): { dir: string; version: string } {
  const script = 'import json, sys, sysconfig; print(json.dumps({"stdlib": sysconfig.get_paths()["stdlib"], "version": "%d.%d.%d" % sys.version_info[:3]}))';
  const r = spawnSync(python, ['-c', script], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new CorpusError(`cannot run ${python} (${r.error.message}); the code corpus reads that Python's standard library (pass another with --python)`);
  if (r.status !== 0) throw new CorpusError(`${python} -c <sysconfig query> failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').at(-1)}`);
  let o: { stdlib?: unknown; version?: unknown };
  try {
    o = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
  } catch {
    throw new CorpusError(`${python}: unexpected answer to the sysconfig query: ${JSON.stringify(r.stdout.slice(0, 200))}`);
  }
  if (typeof o.stdlib !== 'string' || typeof o.version !== 'string') throw new CorpusError(`${python}: the sysconfig query gave no stdlib path and version: ${JSON.stringify(o)}`);
  if (!fs.statSync(o.stdlib, { throwIfNoEntry: false })?.isDirectory()) throw new CorpusError(`${o.stdlib}: the standard library folder of ${python} does not exist`);
  return { dir: o.stdlib, version: o.version };
}

/** The split of a file: validation when the first 4 bytes of SHA-256(path), big-endian, are ≡ 0 mod 10 (about 10%). */
export function isValidPath(relPath: string): boolean {
  return createHash('sha256').update(relPath, 'utf8').digest().readUInt32BE(0) % 10 === 0;
}

/** The `.py` files under `root` (relative posix paths, sorted), and what was left out, by reason. */
export function listPythonFiles(root: string, includeTests: boolean): { files: string[]; excluded: Record<string, number> } {
  const files: string[] = [];
  const excluded: Record<string, number> = {};
  const skip = (why: string) => void (excluded[why] = (excluded[why] ?? 0) + 1);
  const walk = (rel: string): void => {
    const entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) {
        if (e.name.endsWith('.py')) skip('symbolic links');
      } else if (e.isDirectory()) {
        if (SKIPPED_DIRS.has(e.name) || e.name.startsWith('config-')) continue;
        if (!includeTests && TEST_DIRS.has(e.name)) {
          skip('test folders');
          continue;
        }
        walk(r);
      } else if (e.isFile() && e.name.endsWith('.py')) files.push(r);
    }
  };
  walk('');
  return { files, excluded };
}

/** Builds `<out>/codeparrot` from a Python's standard library (skipped when already built, unless `force`). */
export async function buildCode(opts: CodeOptions): Promise<BuildReport> {
  const dir = path.join(opts.out, 'codeparrot');
  return buildFolder(dir, opts, async (tmp) => {
    const python = opts.python ?? 'python3';
    const lib = pythonStdlib(python);
    const repo = `cpython-stdlib-${lib.version}`;
    const { files, excluded } = listPythonFiles(lib.dir, opts.includeTests ?? false);
    if (files.length === 0) throw new CorpusError(`${lib.dir}: no .py files`);
    const shardChars = opts.shardChars ?? 8_000_000;
    const train = new ShardWriter(path.join(tmp, 'codeparrot-clean-train'), shardChars);
    const valid = new ShardWriter(path.join(tmp, 'codeparrot-clean-valid'), shardChars);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const bar = opts.progress ? new Progress({ label: 'code', total: files.length, unit: 'files', stream: opts.progress }) : null;
    files.forEach((rel, i) => {
      if (i > 0) bar?.update(i);
      const bytes = fs.readFileSync(path.join(lib.dir, rel));
      let content: string;
      try {
        content = decoder.decode(bytes);
      } catch {
        excluded['files not valid UTF-8'] = (excluded['files not valid UTF-8'] ?? 0) + 1;
        return;
      }
      if (content.trim() === '') {
        excluded['empty files'] = (excluded['empty files'] ?? 0) + 1;
        return;
      }
      const p = `Lib/${rel}`;
      const record = { repo_name: repo, path: p, copies: '1', size: String(bytes.length), content, license: CODE_LICENSE };
      (isValidPath(p) ? valid : train).add(record, content);
    });
    bar?.finish('', files.length);
    const name = (i: number) => `file-${pad(i + 1, 12)}.json.gz`;
    const splits = { train: train.finish(name), valid: valid.finish(name) };
    if (splits.train.documents === 0 || splits.valid.documents === 0) throw new CorpusError(`${lib.dir}: ${files.length} file(s) give an empty ${splits.train.documents === 0 ? 'train' : 'valid'} split`);
    return {
      corpus: 'code',
      format: 'codeparrot',
      source: `the standard library of ${python} (Python ${lib.version}) at ${lib.dir}`,
      license: `${CODE_LICENSE} (Python Software Foundation License Version 2)`,
      splits,
      excluded,
      details: { repo_name: repo, python, stdlib: lib.dir, valid: 'the first 4 bytes of SHA-256(path), big-endian, ≡ 0 mod 10', includeTests: opts.includeTests ?? false },
    };
  });
}
