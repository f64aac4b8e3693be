/**
 * Creating directories without hanging.
 *
 *   makeDirs('runs/procedural/sort-20')   // creates the missing components, returns the path
 *
 * `fs.mkdirSync(p, { recursive: true })` loops forever when the nearest existing ancestor is a pseudo
 * file system that refuses new entries with ENOENT (`/proc/x`: mkdir says the parent is missing, the
 * recursive walk creates the parent, which exists, and tries again). makeDirs walks up to the nearest
 * existing ancestor itself, checks that it is a directory, then creates each missing component with a
 * plain mkdir, so every failure is one system call and one error naming the path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export class DirectoryError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'DirectoryError';
  }
}

/** Creates `dir` and its missing parents; throws a DirectoryError naming the component that failed. */
export function makeDirs(dir: string): string {
  const target = path.resolve(dir);
  const missing: string[] = [];
  let cur = target;
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(cur);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new DirectoryError(`cannot create directory ${dir}: ${cur}: ${(e as Error).message}`, cur);
    }
    if (st) {
      if (!st.isDirectory()) throw new DirectoryError(`cannot create directory ${dir}: ${cur} exists and is not a directory`, cur);
      break;
    }
    missing.push(cur);
    const parent = path.dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EEXIST' && fs.statSync(d).isDirectory()) continue; // created concurrently
      const why = err.code === 'ENOENT' ? `${path.dirname(d)} does not accept new directories (${err.code})` : err.message;
      throw new DirectoryError(`cannot create directory ${dir}: ${why}`, d);
    }
  }
  return dir;
}
