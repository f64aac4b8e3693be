/**
 * Directory locks. A lock is a directory holding `owner.json` (pid, host, a random token); it is
 * born complete: the owner file is written into a fresh temporary directory that is then renamed
 * onto the lock's path (rename is atomic, and fails when the path already holds a lock). Release
 * renames it aside before removing it, so the lock's path never holds a half-written or
 * half-removed lock that a SIGKILL could leave behind. The owner touches owner.json every 30 s.
 * A lock is stale, and may be retaken, when its owner ran on this host and that pid is gone, or
 * when its heartbeat is older than `staleMs` (10 min: an owner on another machine sharing the
 * directory that died). Works on any file system where rename is atomic (local disks, NFS v3+).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { makeDirs } from '../util/dirs.ts';

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
  /** Random: tells two locks of the same process apart. */
  token?: string;
}

const HEARTBEAT_MS = 30_000;
export const DEFAULT_STALE_MS = 10 * 60_000;
const OWNER_FILE = 'owner.json';

/** A sibling path of `path` that no other process or call uses. */
const sidePath = (path: string, what: string): string => `${path}.${what}-${process.pid}-${randomBytes(6).toString('hex')}`;

export class Lock {
  private timer: NodeJS.Timeout;
  private released = false;
  constructor(
    readonly path: string,
    private readonly owner: LockOwner,
  ) {
    const ownerFile = join(path, OWNER_FILE);
    this.timer = setInterval(() => {
      try {
        const now = new Date();
        utimesSync(ownerFile, now, now);
      } catch {
        /* taken over or removed: nothing to do */
      }
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    // A lock judged stale and retaken by another process meanwhile is not ours to remove.
    removeLock(this.path, this.owner, 'released');
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The owner of a lock directory, or null (no lock, or a directory without an owner file). */
export function lockOwner(path: string): LockOwner | null {
  try {
    return JSON.parse(readFileSync(join(path, OWNER_FILE), 'utf8')) as LockOwner;
  } catch {
    return null;
  }
}

/**
 * Whether an existing lock directory's owner is gone. A directory without an owner file (left by
 * an older kindling killed while taking or releasing a lock) is stale after a minute.
 */
export function isStale(path: string, staleMs = DEFAULT_STALE_MS): boolean {
  let mtime: number;
  const owner = lockOwner(path);
  try {
    mtime = statSync(owner ? join(path, OWNER_FILE) : path).mtimeMs;
  } catch {
    return false; // vanished: not ours to judge, the next tryLock will see
  }
  const age = Date.now() - mtime;
  if (!owner) return age > 60_000;
  if (owner.host === hostname() && !alive(owner.pid)) return true;
  return age > staleMs;
}

const sameOwner = (a: LockOwner | null, b: LockOwner | null): boolean =>
  a === null || b === null ? a === b : a.pid === b.pid && a.host === b.host && a.since === b.since && a.token === b.token;

/**
 * Removes the lock at `path` if its owner is `expected`: renames it aside (atomic), then removes it,
 * or renames it back when what moved is another owner's lock. 'gone': nothing was at `path`.
 */
function removeLock(path: string, expected: LockOwner | null, what: string): 'removed' | 'gone' | 'not-expected' {
  const aside = sidePath(path, what);
  try {
    renameSync(path, aside);
  } catch {
    return 'gone';
  }
  if (!sameOwner(lockOwner(aside), expected)) {
    try {
      renameSync(aside, path);
    } catch {
      /* a third process took the path meanwhile; the moved lock's owner loses it */
    }
    return 'not-expected';
  }
  rmSync(aside, { recursive: true, force: true });
  return 'removed';
}

/** Takes the lock, or returns null when a live owner holds it. A stale lock is retaken. */
export function tryLock(path: string, staleMs = DEFAULT_STALE_MS): Lock | null {
  makeDirs(dirname(path));
  for (let attempt = 0; attempt < 2; attempt++) {
    const fresh = sidePath(path, 'new');
    mkdirSync(fresh);
    const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), token: randomBytes(8).toString('hex') };
    try {
      writeFileSync(join(fresh, OWNER_FILE), JSON.stringify(owner));
      // Onto a missing path (or an empty directory) this succeeds; onto a lock it fails.
      renameSync(fresh, path);
      return new Lock(path, owner);
    } catch (e) {
      rmSync(fresh, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
    const judged = lockOwner(path);
    if (!isStale(path, staleMs)) return null;
    // Another process may have retaken it since it was judged: its fresh lock stays.
    if (removeLock(path, judged, 'stale') === 'not-expected') return null;
  }
  return null;
}
