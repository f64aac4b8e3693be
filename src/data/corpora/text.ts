// Document loaders of the two text corpora: C4 (§7.1, field `text`) and CodeParrot (§7.2, field
// `content`). Each is an async iterator over the records of a file, a directory or a glob of JSON-lines
// shards (plain or gzipped) or Parquet files, in file-name order, streamed (src/data/corpora/files.ts).
// Pack them with src/data/corpora/pack.ts.

import { Diagnostics, isRecordFile, readRecords, resolveInputs, type LoadOptions } from './files.ts';

export interface DocumentLoadOptions extends LoadOptions {
  /** Stop after this many documents (the spec's C4 subset is the first 100,000). */
  maxDocuments?: number;
  /** Collects skips and warnings (created from `strict`/`onWarning` when absent); read `.skipped` after. */
  diagnostics?: Diagnostics;
  /** Called with each file when the loader starts reading it. */
  onFile?: (file: string) => void;
}

export interface C4Document {
  text: string;
  timestamp?: string;
  url?: string;
  /** The shard and 1-based record (line or row) the document came from. */
  source: string;
  record: number;
}

export interface CodeDocument {
  /** The record's `content`. */
  text: string;
  repoName?: string;
  path?: string;
  source: string;
  record: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

async function* documents<T>(path: string, field: string, columns: string[], what: string, opts: DocumentLoadOptions, make: (text: string, fields: Record<string, unknown>, source: string, record: number) => T): AsyncGenerator<T> {
  const diag = opts.diagnostics ?? new Diagnostics(opts);
  const files = await resolveInputs(path, isRecordFile, what);
  const max = opts.maxDocuments ?? Infinity;
  let n = 0;
  if (n >= max) return;
  for (const file of files) {
    opts.onFile?.(file);
    for await (const r of readRecords(file, field, diag, columns)) {
      yield make(r.text, r.fields, r.source, r.record);
      if (++n >= max) return;
    }
  }
}

/**
 * C4 documents (`allenai/c4`, config `en`): `c4-train.*.json.gz` / `c4-validation.*.json.gz` shards of
 * JSON lines `{text, timestamp, url}`, or the same records as Parquet. Only `text` is trained on.
 */
export function c4Documents(path: string, opts: DocumentLoadOptions = {}): AsyncGenerator<C4Document> {
  return documents(path, 'text', ['timestamp', 'url'], 'C4 shards (*.json, *.jsonl, *.json.gz, *.parquet)', opts, (text, f, source, record) => ({
    text,
    timestamp: f.timestamp instanceof Date ? f.timestamp.toISOString() : str(f.timestamp),
    url: str(f.url),
    source,
    record,
  }));
}

/**
 * CodeParrot documents (`codeparrot/codeparrot-clean-train`, `-valid`): JSON lines (plain or gzipped)
 * or Parquet records whose `content` is the source file; `repo_name` and `path` are kept when present.
 */
export function codeparrotDocuments(path: string, opts: DocumentLoadOptions = {}): AsyncGenerator<CodeDocument> {
  return documents(path, 'content', ['repo_name', 'path'], 'CodeParrot files (*.json, *.jsonl, *.json.gz, *.parquet)', opts, (text, f, source, record) => ({
    text,
    repoName: str(f.repo_name),
    path: str(f.path),
    source,
    record,
  }));
}
