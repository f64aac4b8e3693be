// What the three corpus builders share (docs/data.md, "Embedded default corpora"): a corpus is built
// into a temporary sibling folder and renamed into place when complete, with a manifest
// (`kindling-corpus.json`) holding what was written; a later build finds the manifest and skips the
// corpus unless forced. Shards of gzipped JSON lines are written whole through OutputFile (so a full
// disk names the file) and named once their count is known.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { OutputFile, errorText } from '../../../util/files.ts';
import { makeDirs } from '../../../util/dirs.ts';
import { CorpusError, codePoints } from '../files.ts';

export const MANIFEST_FILE = 'kindling-corpus.json';

/** Counts of one split of a built corpus. */
export interface SplitCounts {
  /** Files written (shards, or module files for math). */
  files: number;
  /** Documents (math: problems). */
  documents: number;
  /** Unicode code points of the texts (math: question + answer). */
  characters: number;
  /** Bytes on disk of the files written. */
  bytes: number;
}

/** What a builder wrote, also stored as the corpus's manifest. */
export interface BuildReport {
  corpus: 'english' | 'code' | 'math';
  /** The folder the corpus's loader reads (the c4 `en` folder, the CodeParrot root, the math root). */
  dir: string;
  /** The corpus was already there (its manifest was found) and nothing was written. */
  skipped: boolean;
  /** The loader that reads it: c4, codeparrot or dmmath. */
  format: 'c4' | 'codeparrot' | 'dmmath';
  source: string;
  license: string;
  splits: Record<string, SplitCounts>;
  /** Records left out, by reason (e.g. "not valid UTF-8": 2). */
  excluded: Record<string, number>;
  /** Anything else worth keeping (the seed, the Python version, …). */
  details: Record<string, unknown>;
}

export const emptyCounts = (): SplitCounts => ({ files: 0, documents: 0, characters: 0, bytes: 0 });

/** The totals of a report over its splits. */
export function totals(r: BuildReport): SplitCounts {
  const t = emptyCounts();
  for (const s of Object.values(r.splits)) {
    t.files += s.files;
    t.documents += s.documents;
    t.characters += s.characters;
    t.bytes += s.bytes;
  }
  return t;
}

export interface BuildOptions {
  /** Rebuild even when the corpus's manifest exists (the old folder is replaced when the new one is complete). */
  force?: boolean;
  /** Progress and notes (default: nothing). */
  log?: (line: string) => void;
}

/** Reads the manifest of a finished corpus folder, or null when there is none. */
export function readManifest(dir: string): BuildReport | null {
  const f = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(f)) return null;
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8')) as BuildReport;
  } catch (e) {
    throw new CorpusError(`${f}: unreadable manifest (${errorText(e)}); remove it or build with --force`);
  }
}

/**
 * Builds the folder `dir` through `build(tmp)`, which writes into an empty temporary sibling and returns
 * the report; the sibling is renamed to `dir` only when `build` returns. Skips (returning the stored
 * report with `skipped: true`) when `dir` holds a manifest and `force` is not set. A `dir` that exists
 * without a manifest is not ours to delete: an error unless `force`.
 */
export async function buildFolder(dir: string, opts: BuildOptions, build: (tmp: string) => Promise<Omit<BuildReport, 'dir' | 'skipped'>>): Promise<BuildReport> {
  const old = readManifest(dir);
  if (old && !opts.force) return { ...old, dir, skipped: true };
  if (!old && fs.existsSync(dir) && !opts.force) {
    throw new CorpusError(`${dir}: exists but holds no ${MANIFEST_FILE} (not a finished build); remove it or build with --force`);
  }
  const parent = path.dirname(dir);
  try {
    makeDirs(parent);
  } catch (e) {
    throw new CorpusError(`cannot create ${parent}: ${errorText(e)}`);
  }
  const tmp = path.join(parent, `.${path.basename(dir)}.partial-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    const body = await build(tmp);
    const report: BuildReport = { ...body, dir, skipped: false };
    const mf = new OutputFile(path.join(tmp, MANIFEST_FILE));
    mf.write(JSON.stringify(report, null, 2) + '\n');
    mf.commit();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    return report;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Collects JSON-lines records into gzipped shards of about `shardChars` characters of JSON text each
 * (a record is never split), written under temporary names; `finish` renames them with `name(i, n)`
 * (i 0-based, n the shard count) and returns the counts. `text` gives the characters counted.
 */
let writers = 0;

export class ShardWriter {
  /** Keeps the temporary names of two writers in one folder apart. */
  private readonly id = writers++;
  private lines: string[] = [];
  private pendingChars = 0;
  private readonly tmpFiles: string[] = [];
  readonly counts = emptyCounts();

  constructor(
    private readonly dir: string,
    private readonly shardChars: number,
  ) {
    makeDirs(dir);
  }

  add(record: Record<string, unknown>, text: string): void {
    const line = JSON.stringify(record);
    this.lines.push(line);
    this.pendingChars += line.length + 1;
    this.counts.documents++;
    this.counts.characters += codePoints(text);
    if (this.pendingChars >= this.shardChars) this.flush();
  }

  private flush(): void {
    if (this.lines.length === 0) return;
    const file = path.join(this.dir, `.shard-${this.id}-${this.tmpFiles.length}.tmp.json.gz`);
    const gz = gzipSync(this.lines.join('\n') + '\n', { level: 9 });
    const out = new OutputFile(file);
    out.write(gz);
    out.commit();
    this.counts.bytes += gz.length;
    this.tmpFiles.push(file);
    this.lines = [];
    this.pendingChars = 0;
  }

  finish(name: (i: number, n: number) => string): SplitCounts {
    this.flush();
    const n = this.tmpFiles.length;
    this.tmpFiles.forEach((f, i) => fs.renameSync(f, path.join(this.dir, name(i, n))));
    this.counts.files = n;
    return { ...this.counts };
  }
}

/** `n` as a decimal string of at least `width` digits. */
export const pad = (n: number, width: number): string => String(n).padStart(width, '0');
