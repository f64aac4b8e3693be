import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import type { Engine } from '../../engine/engine.ts';
import { buildTokenCsr, embedding } from '../../engine/ops/embedding.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { poison, poisonPool, randn, relErr, rng, useEngine } from '../helpers/gpu.ts';
import { bwdRef, bwdRefPositions, fwdRef, fwdRefPositions } from '../reference/embedding.ts';

const engine = useEngine();

function randIds(n: number, V: number, seed: number, invalid = 0): Int32Array {
  const r = rng(seed);
  const ids = Int32Array.from({ length: n }, () => Math.floor(r() * V));
  // sprinkle out-of-range ids
  const bad = [-1, V, V + 1000, -2147483648, 2147483647];
  for (let k = 0; k < invalid; k++) ids[Math.floor(r() * n)] = bad[k % bad.length]!;
  return ids;
}

describe('buildTokenCsr', () => {
  it('groups positions by token in ascending order and skips invalid ids', () => {
    const ids = Int32Array.from([3, 1, 3, -1, 0, 3, 9, 1]);
    const { csr, unique } = buildTokenCsr(ids, 5);
    expect(unique).toBe(3);
    expect(Array.from(csr)).toEqual([0, 1, 3, /* offsets */ 0, 1, 3, 6, /* positions */ 4, 1, 7, 0, 2, 5]);
  });
});

describe('embedding forward', () => {
  for (const [B, T, d, V, Pn] of [
    [1, 1, 1, 1, 1],
    [2, 3, 17, 5, 4],
    [3, 17, 33, 50, 20],
    [4, 33, 128, 1000, 64],
    [1, 127, 3, 7, 127],
  ])
    it(`B=${B} T=${T} d=${d} V=${V}, with out-of-range ids and a position offset`, async () => {
      const e = await engine();
      const ids = randIds(B * T, V, B + T + d, B * T > 4 ? 3 : 0);
      const wte = randn(V * d, 1);
      const wpe = randn(Pn * d, 2);
      const off = Pn - T;
      poisonPool(e, B * T * d);
      const out = embedding(e.tensor(ids, [B, T]), e.tensor(wte, [V, d]), e.tensor(wpe, [Pn, d]), { positionOffset: off });
      expect(out.shape).toEqual([B, T, d]);
      expect(relErr(await out.read(), fwdRef(ids, T, wte, wpe, V, d, off))).toBeLessThan(1e-6);
    });

  it('rejects positions beyond wpe', async () => {
    const e = await engine();
    const ids = e.tensor(new Int32Array(8), [2, 4]);
    expect(() => embedding(ids, e.tensor(new Float32Array(8), [2, 4]), e.tensor(new Float32Array(12), [3, 4]))).toThrow(/exceed/);
  });
});

describe('embedding backward', () => {
  it('the float64 gradient matches central finite differences', () => {
    // The embedding is linear in its tables; check the reference gradient of Σ w·out numerically.
    const ids = Int32Array.from([2, 0, 2, 5, 1, 2]); // 5 is out of range for V = 4
    const T = 3;
    const V = 4;
    const d = 2;
    const Pn = 3;
    const wte = Float64Array.from(randn(V * d, 3));
    const wpe = Float64Array.from(randn(Pn * d, 4));
    const w = randn(ids.length * d, 5);
    const f = (a: Float64Array, b: Float64Array) => fwdRef(ids, T, Float32Array.from(a), Float32Array.from(b), V, d).reduce((s, v, i) => s + v * w[i]!, 0);
    const ref = bwdRef(ids, T, w, V, Pn, d);
    const h = 1e-3; // linear: exact up to the float32 rounding of the inputs
    const fd = (x: Float64Array, which: 0 | 1) =>
      x.map((_, i) => {
        const p = Float64Array.from(x);
        const m = Float64Array.from(x);
        p[i]! += h;
        m[i]! -= h;
        return which === 0 ? (f(p, wpe) - f(m, wpe)) / (2 * h) : (f(wte, p) - f(wte, m)) / (2 * h);
      });
    expect(relErr(fd(wte, 0), ref.dwte)).toBeLessThan(1e-4);
    expect(relErr(fd(wpe, 1), ref.dwpe)).toBeLessThan(1e-4);
  });

  for (const path of ['csr', 'scan'] as const)
    for (const [B, T, d, V, Pn, off] of [
      [1, 1, 1, 1, 1, 0],
      [2, 3, 17, 5, 4, 1],
      [3, 17, 33, 50, 17, 0],
      [8, 64, 128, 37, 80, 16],
      [16, 33, 12, 3, 33, 0],
    ])
      it(`${path}: B=${B} T=${T} d=${d} V=${V} P=${Pn} offset ${off}: fresh gradients`, async () => {
        const e = await engine();
        const ids = randIds(B * T, V, 7 + d, 2);
        const g = randn(B * T * d, 8);
        e.startGrad();
        const wte = e.tensor(randn(V * d, 9), [V, d], { requiresGrad: true });
        const wpe = e.tensor(randn(Pn * d, 10), [Pn, d], { requiresGrad: true });
        const out = embedding(e.tensor(ids, [B, T]), wte, wpe, { idsHost: path === 'csr' ? ids : undefined, wteBackward: path, positionOffset: off });
        poisonPool(e, V * d);
        poisonPool(e, Pn * d);
        backward(out, e.tensor(g, [B, T, d]));
        const ref = bwdRef(ids, T, g, V, Pn, d, off);
        expect(relErr(await wte.grad!.read(), ref.dwte)).toBeLessThan(1e-6);
        expect(relErr(await wpe.grad!.read(), ref.dwpe)).toBeLessThan(1e-6);
      });

  for (const path of ['csr', 'scan'] as const)
    it(`${path}: accumulates into preallocated gradients; rows of absent tokens stay untouched`, async () => {
      const e = await engine();
      const B = 3;
      const T = 11;
      const d = 8;
      const V = 40; // most tokens absent
      const Pn = 16;
      const off = 2;
      const ids = randIds(B * T, 10, 77); // only tokens < 10 occur
      const g1 = randn(B * T * d, 12);
      const g2 = randn(B * T * d, 13);
      const init = randn(V * d, 14);
      const initP = randn(Pn * d, 15);
      const wte = e.tensor(randn(V * d, 16), [V, d], { requiresGrad: true });
      const wpe = e.tensor(randn(Pn * d, 17), [Pn, d], { requiresGrad: true });
      wte.grad = e.tensor(init, [V, d]);
      wpe.grad = e.tensor(initP, [Pn, d]);
      const idsT = e.tensor(ids, [B, T]);
      for (const g of [g1, g2]) {
        e.startGrad();
        const out = embedding(idsT, wte, wpe, { idsHost: path === 'csr' ? ids : undefined, wteBackward: path, positionOffset: off });
        backward(out, e.tensor(g, [B, T, d]));
      }
      const r1 = bwdRef(ids, T, g1, V, Pn, d, off);
      const r2 = bwdRef(ids, T, g2, V, Pn, d, off);
      const got = await wte.grad!.read();
      const gotP = await wpe.grad!.read();
      expect(relErr(got, Array.from(init, (v, i) => v + r1.dwte[i]! + r2.dwte[i]!))).toBeLessThan(1e-6);
      expect(relErr(gotP, Array.from(initP, (v, i) => v + r1.dwpe[i]! + r2.dwpe[i]!))).toBeLessThan(1e-6);
      // absent tokens (10..39) and unused positions keep their exact bits
      expect(Array.from(got.slice(10 * d))).toEqual(Array.from(init.slice(10 * d)));
      expect(Array.from(gotP.slice(0, off * d))).toEqual(Array.from(initP.slice(0, off * d)));
    });

  it('is deterministic (bitwise) with many repeated tokens, and both paths agree', async () => {
    const e = await engine();
    const B = 16;
    const T = 128;
    const d = 32;
    const V = 13;
    const ids = randIds(B * T, V, 99);
    const g = randn(B * T * d, 100);
    const run = async (path: 'csr' | 'scan') => {
      e.startGrad();
      const wte = e.tensor(randn(V * d, 101), [V, d], { requiresGrad: true });
      const wpe = e.tensor(randn(T * d, 102), [T, d], { requiresGrad: true });
      const out = embedding(e.tensor(ids, [B, T]), wte, wpe, { idsHost: path === 'csr' ? ids : undefined });
      backward(out, e.tensor(g, [B, T, d]));
      return [await wte.grad!.read(), await wpe.grad!.read()].map((a) => Array.from(a));
    };
    const a = await run('csr');
    expect(await run('csr')).toEqual(a);
    const s = await run('scan');
    expect(await run('scan')).toEqual(s);
    const ref = bwdRef(ids, T, g, V, T, d);
    expect(relErr(a[0]!, ref.dwte)).toBeLessThan(1e-6);
    expect(relErr(s[0]!, ref.dwte)).toBeLessThan(1e-6);
  });
});

describe('embedding with per-row positions (packed bodies)', () => {
  /** Positions of a packed body: sequences of lengths `lens` with `pad` pad rows (−1) after each, plus a few out-of-range ones. */
  function packedPositions(lens: number[], pad: number, Pn: number): Int32Array {
    const out: number[] = [];
    for (const l of lens) {
      for (let t = 0; t < l; t++) out.push(t);
      for (let k = 0; k < pad; k++) out.push(-1);
    }
    if (out.length > 3) out[1] = Pn; // out of range: no position row, no gradient
    return Int32Array.from(out);
  }

  for (const [d, V, Pn, lens, pad] of [
    [1, 3, 4, [1, 2, 4], 1],
    [16, 50, 32, [21, 21, 39, 61 - 32], 3],
    [12, 7, 64, [5, 64, 64, 9], 0],
  ] as [number, number, number, number[], number][])
    for (const path of ['csr', 'scan'] as const)
      it(`d=${d} V=${V} P=${Pn} lengths ${lens.join('/')}, ${pad} pad rows each, ${path}: forward and both gradients against float64`, async () => {
        const e = await engine();
        const positions = packedPositions(lens, pad, Pn);
        const N = positions.length;
        const ids = randIds(N, V, 31 + d, 2);
        positions.forEach((p, i) => p < 0 && (ids[i] = -1));
        const wteH = randn(V * d, 32);
        const wpeH = randn(Pn * d, 33);
        const g = randn(N * d, 34);
        e.startGrad();
        const wte = e.tensor(wteH, [V, d], { requiresGrad: true });
        const wpe = e.tensor(wpeH, [Pn, d], { requiresGrad: true });
        poisonPool(e, N * d);
        const host = path === 'csr' ? { idsHost: ids, positionsHost: positions } : {};
        const out = embedding(e.tensor(ids, [N]), wte, wpe, { positions: e.tensor(positions, [N]), wteBackward: path, ...host });
        expect(out.shape).toEqual([N, d]);
        expect(relErr(await out.read(), fwdRefPositions(ids, positions, wteH, wpeH, V, Pn, d))).toBeLessThan(1e-6);
        poisonPool(e, V * d);
        poisonPool(e, Pn * d);
        backward(out, e.tensor(g, [N, d]));
        const ref = bwdRefPositions(ids, positions, g, V, Pn, d);
        expect(relErr(await wte.grad!.read(), ref.dwte)).toBeLessThan(1e-6);
        expect(relErr(await wpe.grad!.read(), ref.dwpe)).toBeLessThan(1e-6);
      });

  it('rejects positions of the wrong size and positions with an offset', async () => {
    const e = await engine();
    const ids = e.tensor(new Int32Array(8), [8]);
    const wte = e.tensor(new Float32Array(8), [2, 4]);
    const wpe = e.tensor(new Float32Array(12), [3, 4]);
    expect(() => embedding(ids, wte, wpe, { positions: e.tensor(new Int32Array(7), [7]) })).toThrow(/positions has 7 entries, ids 8/);
    expect(() => embedding(ids, wte, wpe, { positions: e.tensor(new Int32Array(8), [8]), positionOffset: 0 })).toThrow(/exclude/);
  });
});
