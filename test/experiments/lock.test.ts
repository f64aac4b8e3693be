// Directory locks (src/experiments/lock.ts) in every state a SIGKILL can leave them, no GPU: a lock is
// born with its owner file, so a killed owner leaves either a complete lock (retaken at once, its pid
// being gone) or side directories that are not the lock.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isStale, lockOwner, tryLock } from '../../src/experiments/lock.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kindling-lock-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(tmp, `l${n++}`, 'run-x');

/** A pid that was alive a moment ago and is gone now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('directory locks', () => {
  it('a lock is born with its owner file and leaves no side directory', () => {
    const path = fresh();
    const lock = tryLock(path)!;
    expect(lock).not.toBeNull();
    const owner = lockOwner(path)!;
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect(owner.token).toMatch(/^[0-9a-f]{16}$/);
    expect(readdirSync(join(path, '..'))).toEqual(['run-x']);
    // A live owner (this process) keeps it: a second taker is refused and changes nothing.
    expect(tryLock(path)).toBeNull();
    expect(lockOwner(path)).toEqual(owner);
    lock.release();
    expect(readdirSync(join(path, '..'))).toEqual([]);
  });

  it('a lock whose owner died (SIGKILL: no release) is retaken at once', () => {
    const path = fresh();
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, 'owner.json'), JSON.stringify({ pid: deadPid(), host: hostname(), since: new Date().toISOString(), token: 'dead' }));
    expect(isStale(path)).toBe(true);
    const lock = tryLock(path)!;
    expect(lock).not.toBeNull();
    expect(lockOwner(path)!.pid).toBe(process.pid);
    expect(readdirSync(join(path, '..'))).toEqual(['run-x']);
    lock.release();
  });

  it('an empty lock directory (an older kindling killed mid-release) is retaken at once, not after a minute', () => {
    const path = fresh();
    mkdirSync(path, { recursive: true });
    expect(isStale(path)).toBe(false); // judged by age alone: young
    const lock = tryLock(path)!;
    expect(lock).not.toBeNull();
    expect(lockOwner(path)!.pid).toBe(process.pid);
    lock.release();
  });

  it('side directories left by a kill (a lock being born, released or retaken) do not block the lock', () => {
    const path = fresh();
    for (const side of ['new-1-aa', 'released-1-bb', 'stale-1-cc']) {
      mkdirSync(`${path}.${side}`, { recursive: true });
      writeFileSync(join(`${path}.${side}`, 'owner.json'), JSON.stringify({ pid: process.pid, host: hostname(), since: '', token: side }));
    }
    const lock = tryLock(path)!;
    expect(lock).not.toBeNull();
    expect(lockOwner(path)!.token).not.toMatch(/-/);
    lock.release();
    expect(existsSync(path)).toBe(false);
  });

  it('releasing a lock that another process retook (judged stale) leaves that process its lock', () => {
    const path = fresh();
    const mine = tryLock(path)!;
    // Another process retakes it: its owner file replaces ours (as a stale retake does).
    const theirs = { pid: 1, host: `${hostname()}-elsewhere`, since: new Date().toISOString(), token: 'theirs' };
    writeFileSync(join(path, 'owner.json'), JSON.stringify(theirs));
    mine.release();
    expect(lockOwner(path)).toEqual(theirs);
    expect(readdirSync(join(path, '..'))).toEqual(['run-x']);
  });

  it('a lock on another host is kept until its heartbeat is older than staleMs', () => {
    const path = fresh();
    mkdirSync(path, { recursive: true });
    const other = { pid: 1, host: `${hostname()}-elsewhere`, since: new Date().toISOString(), token: 'remote' };
    writeFileSync(join(path, 'owner.json'), JSON.stringify(other));
    expect(tryLock(path)).toBeNull();
    expect(lockOwner(path)).toEqual(other);
    const lock = tryLock(path, -1)!; // any age counts as stale
    expect(lock).not.toBeNull();
    expect(JSON.parse(readFileSync(join(path, 'owner.json'), 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('a process SIGKILLed while it takes and releases a lock in a loop never leaves one that blocks the next taker', async () => {
    const path = fresh();
    const lockTs = resolve('src/experiments/lock.ts');
    const script = `import { tryLock } from ${JSON.stringify(lockTs)};\nprocess.send('ready');\nfor (;;) tryLock(${JSON.stringify(path)})?.release();\n`;
    const file = join(tmp, `loop-${n}.ts`);
    writeFileSync(file, script);
    for (let round = 0; round < 8; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      await new Promise<void>((res) => child.once('message', () => res()));
      await new Promise((res) => setTimeout(res, 20 + 15 * round));
      const exited = new Promise<void>((res) => child.once('exit', () => res()));
      child.kill('SIGKILL');
      await exited;
      const lock = tryLock(path);
      expect(lock, `round ${round}: ${existsSync(path) ? JSON.stringify(lockOwner(path)) : 'no lock'}`).not.toBeNull();
      lock!.release();
    }
  }, 60_000);
});
