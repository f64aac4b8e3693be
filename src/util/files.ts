/**
 * Input and output files of the commands, with messages that name the path and what is wrong with it
 * instead of Node's bare `EISDIR: illegal operation on a directory, read`.
 *
 * - `inputFileProblem` / `inputDirProblem`: why a path cannot be read as a file / used as a directory
 *   (null when it can); each caller wraps the text in its own error class (UsageError, ConfigError, …).
 * - `OutputFile`: a file written synchronously, so that a failed write (ENOSPC on a full disk, EIO)
 *   throws at the write with the path and the error code named, instead of surfacing later as an
 *   unhandled stream 'error' event. A regular file is written to a temporary name in the same
 *   directory and renamed into place by `commit`, so a failure leaves an existing file untouched; a
 *   device or pipe (`/dev/stdout`, `/dev/full`, a FIFO) is written directly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The error's own text (Node's fs messages start with the code: `ENOSPC: no space left on device, write`). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The path's stats, or why it has none: "does not exist", "cannot be read (…)". */
function statOrProblem(p: string): fs.Stats | string {
  try {
    return fs.statSync(p);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${errorText(e)})`;
  }
}

/** Why `file` cannot be read as a file: "does not exist", "is a directory, …", "cannot be read (…)"; null when it can. */
export function inputFileProblem(file: string): string | null {
  const st = statOrProblem(file);
  if (typeof st === 'string') return st;
  if (st.isDirectory()) return 'is a directory, expected a file';
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    return `cannot be read (${errorText(e)})`;
  }
  return null;
}

/** Why `dir` cannot be used as an existing directory: "does not exist", "is a file, expected a directory"; null when it can. */
export function inputDirProblem(dir: string): string | null {
  const st = statOrProblem(dir);
  if (typeof st === 'string') return st;
  return st.isDirectory() ? null : 'is a file, expected a directory';
}

/** An output file that cannot be written: the message names the path and the cause. */
export class OutputError extends Error {
  constructor(
    readonly file: string,
    cause: unknown,
    /** The error happened opening the file (a bad path), not writing to it (e.g. a full disk). */
    readonly atOpen: boolean,
  ) {
    super(`cannot write ${file}: ${errorText(cause)}`);
    this.name = 'OutputError';
  }
}

export class OutputFile {
  private fd: number;
  private readonly tmp: string | null;
  private done = false;

  /** Opens `file` for writing; throws an OutputError (atOpen) when it is a directory or cannot be created. */
  constructor(readonly file: string) {
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(file);
    } catch {
      st = null;
    }
    if (st?.isDirectory()) throw new OutputError(file, 'it is a directory', true);
    this.tmp = st === null || st.isFile() ? path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`) : null;
    try {
      this.fd = fs.openSync(this.tmp ?? file, 'w');
    } catch (e) {
      throw new OutputError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? `${errorText(e).split(',')[0]} (does the directory ${path.dirname(file)} exist?)` : e, true);
    }
  }

  /** Writes all of `chunk`; throws an OutputError naming the file and the code (ENOSPC, EIO, …). */
  write(chunk: string | Uint8Array): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      this.abort();
      throw new OutputError(this.file, e, false);
    }
  }

  /** Flushes and closes; a regular file replaces `file` only now. */
  commit(): void {
    if (this.done) return;
    try {
      if (this.tmp) fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.done = true;
      if (this.tmp) fs.renameSync(this.tmp, this.file);
    } catch (e) {
      this.abort();
      throw new OutputError(this.file, e, false);
    }
  }

  /** Closes and removes the temporary file (an existing `file` is left as it was). Safe to call twice. */
  abort(): void {
    if (!this.done) {
      this.done = true;
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    if (this.tmp) fs.rmSync(this.tmp, { force: true });
  }
}

/** Writes `text` to `file` through a temporary name and a rename: readers see the old file or the whole new one. */
export function writeTextAtomic(file: string, text: string): void {
  const out = new OutputFile(file);
  out.write(text);
  out.commit();
}
