/**
 * Directory locks by atomic `mkdir`: the process that creates the directory holds the lock. It writes
 * `owner.json` (pid, host) inside and touches it every 30 s. A lock is stale, and may be retaken, when
 * its owner ran on this host and that pid is gone, or when its heartbeat is older than `staleMs`
 * (10 min: an owner on another machine sharing the directory that died). Works on any file system
 * where mkdir is atomic (local disks, NFS v3+).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { makeDirs } from '../util/dirs.ts';

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

const HEARTBEAT_MS = 30_000;
export const DEFAULT_STALE_MS = 10 * 60_000;

export class Lock {
  private timer: NodeJS.Timeout;
  private released = false;
  constructor(readonly path: string) {
    const owner = join(path, 'owner.json');
    this.timer = setInterval(() => {
      try {
        const now = new Date();
        utimesSync(owner, now, now);
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
    rmSync(this.path, { recursive: true, force: true });
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

/** The owner of a lock directory, or null (no lock, or an owner file not written yet). */
export function lockOwner(path: string): LockOwner | null {
  try {
    return JSON.parse(readFileSync(join(path, 'owner.json'), 'utf8')) as LockOwner;
  } catch {
    return null;
  }
}

/** Whether an existing lock directory's owner is gone. */
export function isStale(path: string, staleMs = DEFAULT_STALE_MS): boolean {
  let mtime: number;
  const owner = lockOwner(path);
  try {
    mtime = statSync(owner ? join(path, 'owner.json') : path).mtimeMs;
  } catch {
    return false; // vanished: not ours to judge, the next tryLock will see
  }
  const age = Date.now() - mtime;
  if (!owner) return age > 60_000; // created but never written: its creator died in between
  if (owner.host === hostname() && !alive(owner.pid)) return true;
  return age > staleMs;
}

/** Takes the lock, or returns null when a live owner holds it. A stale lock is retaken. */
export function tryLock(path: string, staleMs = DEFAULT_STALE_MS): Lock | null {
  makeDirs(dirname(path));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(path);
      const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
      writeFileSync(join(path, 'owner.json'), JSON.stringify(owner));
      return new Lock(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!isStale(path, staleMs)) return null;
    // Move the stale lock aside (rename is atomic: of two processes retaking it, one wins) and retry.
    const aside = `${path}.stale-${process.pid}-${Date.now()}`;
    try {
      renameSync(path, aside);
      rmSync(aside, { recursive: true, force: true });
    } catch {
      /* someone else retook it first */
    }
  }
  return null;
}
