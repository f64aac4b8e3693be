/** Append-only JSON-lines writer for metrics (one object per line, flushed on every write). */
import { appendFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeDirs } from './dirs.ts';

export class JsonlWriter {
  constructor(readonly path: string) {
    makeDirs(dirname(path));
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.path, JSON.stringify(record) + '\n');
  }
}
