import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { gatherRows } from '../../engine/ops/gather.ts';
import { POISON, poisonPool, randn, relErr, rng, useEngine } from '../helpers/gpu.ts';
import { gatherRef, scatterRef } from '../reference/gather.ts';

const engine = useEngine();

/** M distinct row indices in [0, N), in random order, with `bad` out-of-range ones mixed in. */
function distinctRows(M: number, N: number, seed: number, bad = 0): Int32Array {
  const r = rng(seed);
  const all = Array.from({ length: N }, (_, i) => i);
  for (let i = N - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const out = Int32Array.from(all.slice(0, M - bad));
  const oob = [-1, N, N + 7, -2147483648, 2147483647];
  return Int32Array.from([...out, ...oob.slice(0, bad)]);
}

// [M, N, d, out-of-range indices]
const CASES: [number, number, number, number][] = [
  [1, 1, 1, 0],
  [3, 5, 4, 0],
  [3, 17, 3, 1],
  [17, 17, 16, 0],
  [17, 63, 17, 2],
  [127, 1000, 16, 3],
  [127, 130, 33, 0],
  [1000, 63 * 40, 16, 0],
];

describe('gatherRows forward', () => {
  for (const [M, N, d, bad] of CASES)
    it(`M=${M} N=${N} d=${d}${bad ? `, ${bad} out-of-range` : ''}`, async () => {
      const e = await engine();
      const idx = distinctRows(M, N, M + N + d, Math.min(bad, M));
      const x = randn(N * d, 3);
      poisonPool(e, M * d);
      const out = gatherRows(e.tensor(x, [N, d]), e.tensor(idx, [M]), { idxHost: idx });
      expect(out.shape).toEqual([M, d]);
      const got = await out.read();
      expect(Array.from(got).includes(POISON)).toBe(false);
      expect(relErr(got, gatherRef(x, idx, N, d))).toBe(0);
    });

  it('reads x of any rank as [N, d] and rejects repeated indices when idxHost is given', async () => {
    const e = await engine();
    const x = randn(2 * 3 * 5, 4);
    const idx = Int32Array.from([5, 0, 3]);
    const out = gatherRows(e.tensor(x, [2, 3, 5]), e.tensor(idx));
    expect(relErr(await out.read(), gatherRef(x, idx, 6, 5))).toBe(0);
    const rep = Int32Array.from([1, 2, 1]);
    expect(() => gatherRows(e.tensor(x, [6, 5]), e.tensor(rep), { idxHost: rep })).toThrow(/twice/);
  });
});

describe('gatherRows backward', () => {
  for (const [M, N, d, bad] of CASES)
    it(`M=${M} N=${N} d=${d}: a fresh zero gradient with the rows scattered back`, async () => {
      const e = await engine();
      const idx = distinctRows(M, N, 7 * M + d, Math.min(bad, M));
      const x = randn(N * d, 5);
      const g = randn(M * d, 6);
      e.startGrad();
      // x is an intermediate (not a leaf) so that the op makes its own dx.
      const leaf = e.tensor(x, [N, d], { requiresGrad: true });
      const mid = leaf.reshape([N, d]);
      poisonPool(e, N * d);
      const out = gatherRows(mid, e.tensor(idx), { idxHost: idx });
      backward(out, e.tensor(g, [M, d]));
      const got = await leaf.grad!.read();
      expect(Array.from(got).includes(POISON)).toBe(false);
      expect(relErr(got, scatterRef(g, idx, N, d))).toBe(0);
    });

  it('adds into a preallocated gradient in place; untouched rows keep their bits', async () => {
    const e = await engine();
    const [M, N, d] = [17, 40, 12];
    const idx = distinctRows(M, N, 11);
    const init = randn(N * d, 12);
    const g = randn(M * d, 13);
    const x = e.tensor(randn(N * d, 14), [N, d], { requiresGrad: true });
    x.grad = e.tensor(init, [N, d]);
    e.startGrad();
    backward(gatherRows(x, e.tensor(idx)), e.tensor(g, [M, d]));
    const got = await x.grad!.read();
    expect(relErr(got, scatterRef(g, idx, N, d, init))).toBeLessThan(1e-7);
    const hit = new Set(idx);
    for (let r = 0; r < N; r++) if (!hit.has(r)) expect(Array.from(got.slice(r * d, (r + 1) * d))).toEqual(Array.from(init.slice(r * d, (r + 1) * d)));
  });
});
