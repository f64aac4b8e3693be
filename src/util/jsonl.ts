/**
 * JSON lines: the append-only writer for metrics (one object per line, flushed on every write) and the
 * one reader, whose errors name the file and the 1-based line number.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeDirs } from './dirs.ts';
import { errorText, OutputError } from './files.ts';

export class JsonlWriter {
  constructor(readonly path: string) {
    makeDirs(dirname(path));
  }

  /** Appends one line; a failed write (e.g. ENOSPC) throws an OutputError naming the file and the code. */
  write(record: Record<string, unknown>): void {
    try {
      appendFileSync(this.path, JSON.stringify(record) + '\n');
    } catch (e) {
      throw new OutputError(this.path, e, false);
    }
  }
}

/** A line of a JSON-lines file that is not valid JSON or not what the reader expects: `file:line: …`. */
export class JsonlError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    what: string,
  ) {
    super(`${file}:${line}: ${what}`);
    this.name = 'JsonlError';
  }
}

export interface JsonlLine {
  /** 1-based line number in the file. */
  line: number;
  value: unknown;
}

/**
 * The non-blank lines of `text` (read from `file`) parsed as JSON. A line that does not parse throws a
 * JsonlError naming `file` and its line number. With `skipBadLast`, a last line that does not parse and
 * has no newline after it (a write cut by a kill) is dropped instead.
 */
export function parseJsonl(text: string, file: string, opts: { skipBadLast?: boolean } = {}): JsonlLine[] {
  const lines = text.split('\n');
  const out: JsonlLine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (!l.trim()) continue;
    try {
      out.push({ line: i + 1, value: JSON.parse(l) });
    } catch (e) {
      if (opts.skipBadLast && i === lines.length - 1) break;
      throw new JsonlError(file, i + 1, `not valid JSON (${errorText(e)})`);
    }
  }
  return out;
}

/** Reads and parses a JSON-lines file (see parseJsonl). */
export function readJsonl(file: string, opts: { skipBadLast?: boolean } = {}): JsonlLine[] {
  return parseJsonl(readFileSync(file, 'utf8'), file, opts);
}
