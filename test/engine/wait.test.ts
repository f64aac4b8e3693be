import { describe, expect, it } from 'vitest';
import { encodeMatmul } from '../../engine/ops/matmul.ts';
import { gpuWait } from '../../engine/wait.ts';
import { randArray, useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

describe('gpuWait (throttled poll while waiting for Dawn)', () => {
  it('routes setImmediate through the throttle only while a wait is in progress, nesting and overlapping', async () => {
    const original = globalThis.setImmediate;
    let release!: () => void;
    const a = new Promise<void>((r) => (release = r));
    const wa = gpuWait(a);
    expect(globalThis.setImmediate).not.toBe(original);
    const wb = gpuWait(Promise.resolve(7));
    expect(await wb).toBe(7);
    // b ended but a is still waiting: still throttled
    expect(globalThis.setImmediate).not.toBe(original);
    release();
    await wa;
    expect(globalThis.setImmediate).toBe(original);
  });

  it('still runs every setImmediate callback in order while throttled, eager ones first', async () => {
    let release!: () => void;
    const w = gpuWait(new Promise<void>((r) => (release = r)));
    const seen: number[] = [];
    await new Promise<void>((done) => {
      let n = 0;
      const tick = () => {
        seen.push(n++);
        if (n < 50) setImmediate(tick);
        else done();
      };
      setImmediate(tick);
    });
    release();
    await w;
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('lets clearImmediate cancel a callback deferred by the throttle', async () => {
    let release!: () => void;
    const w = gpuWait(new Promise<void>((r) => (release = r)));
    // Use up the eager ticks so the next setImmediate is deferred to a timer.
    for (let i = 0; i < 40; i++) await new Promise<void>((r) => setImmediate(r));
    let fired = false;
    const h = setImmediate(() => (fired = true));
    clearImmediate(h);
    await new Promise<void>((r) => setTimeout(r, 20));
    release();
    await w;
    expect(fired).toBe(false);
  });

  it('passes rejections through and restores the originals', async () => {
    const original = globalThis.setImmediate;
    const originalClear = globalThis.clearImmediate;
    await expect(gpuWait(Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(globalThis.setImmediate).toBe(original);
    expect(globalThis.clearImmediate).toBe(originalClear);
  });

  it('device readbacks through the throttled wait return the computed values', async () => {
    const e = await engine();
    const M = 64;
    const K = 48;
    const N = 40;
    const a = randArray(M * K, 1);
    const b = randArray(K * N, 2);
    const ta = e.tensor(a, [M, K]);
    const tb = e.tensor(b, [K, N]);
    const out = e.empty([M, N]);
    // Several dispatches so the wait lasts past the eager ticks.
    for (let i = 0; i < 4; i++) encodeMatmul(e, ta, tb, out, { M, N, K, accumulate: i > 0 });
    const got = await out.read();
    for (const [m, n] of [
      [0, 0],
      [17, 3],
      [63, 39],
    ] as const) {
      let ref = 0;
      for (let k = 0; k < K; k++) ref += a[m * K + k]! * b[k * N + n]!;
      expect(got[m * N + n]!).toBeCloseTo(4 * ref, 4);
    }
    await e.sync();
    ta.dispose();
    tb.dispose();
    out.dispose();
  });
});
