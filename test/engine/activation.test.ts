import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import type { Engine } from '../../engine/engine.ts';
import { addBias, biasGelu, biasGeluUnfused, gelu } from '../../engine/ops/activation.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { fdGrad, poison, poisonPool, randn, relErr, useEngine } from '../helpers/gpu.ts';
import { gelu64, geluGrad64, K0, K1 } from '../reference/activation.ts';

const engine = useEngine();

describe('gelu', () => {
  it('the float64 reference is 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) and its derivative matches finite differences', () => {
    for (const x of [-3, -1, -0.1, 0, 0.3, 1, 2.5]) expect(gelu64(x)).toBeCloseTo(0.5 * x * (1 + Math.tanh(K0 * (x + K1 * x ** 3))), 14);
    const xs = Float64Array.from(randn(64, 1, 2));
    const w = Float64Array.from(randn(64, 2));
    const f = (x: Float64Array) => x.reduce((s, v, i) => s + w[i]! * gelu64(v), 0);
    expect(relErr(fdGrad(f, xs), xs.map((v, i) => w[i]! * geluGrad64(v)))).toBeLessThan(1e-7);
  });

  for (const n of [1, 3, 17, 33, 127, 1000, 4096, 65_537])
    it(`forward and backward, n = ${n}`, async () => {
      const e = await engine();
      const xs = randn(n, n, 2);
      const gs = randn(n, n + 1);
      e.startGrad();
      const x = e.tensor(xs, [n], { requiresGrad: true });
      poisonPool(e, n);
      const y = gelu(x);
      expect(relErr(await y.read(), Array.from(xs, gelu64))).toBeLessThan(1e-5);
      poisonPool(e, n);
      backward(y, e.tensor(gs));
      expect(relErr(await x.grad!.read(), Array.from(xs, (v, i) => gs[i]! * geluGrad64(v)))).toBeLessThan(1e-5);
    });

  it('forward and backward are finite and relatively accurate in the tails (large |x|, tiny x)', async () => {
    const e = await engine();
    const xs = Float32Array.from([-1e30, -100, -20, -8, -5, -1e-4, 0, 1e-7, 1e-4, 5, 8, 20, 100, 1e30]);
    e.startGrad();
    const x = e.tensor(xs, [xs.length], { requiresGrad: true });
    const yt = gelu(x);
    backward(yt, e.tensor(new Float32Array(xs.length).fill(1)));
    const y = await yt.read();
    const dy = await x.grad!.read();
    const ref = Array.from(xs, gelu64);
    const dref = Array.from(xs, (v) => (Math.abs(v) > 1e10 ? (v > 0 ? 1 : 0) : geluGrad64(v)));
    for (let i = 0; i < xs.length; i++) {
      expect(Number.isFinite(y[i]!)).toBe(true);
      // relative accuracy even where gelu and gelu' are tiny (no 1 + tanh cancellation)
      expect(Math.abs(y[i]! - ref[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(ref[i]!) + 1e-30);
      expect(Number.isFinite(dy[i]!)).toBe(true);
      expect(Math.abs(dy[i]! - dref[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(dref[i]!) + 1e-30);
    }
  });
});

describe('addBias', () => {
  for (const [rows, cols] of [[1, 1], [3, 17], [127, 33], [2048, 128], [5000, 3], [17, 512]] as [number, number][])
    it(`[${rows}, ${cols}] forward, dx and db`, async () => {
      const e = await engine();
      const xs = randn(rows * cols, 10 + cols);
      const bs = randn(cols, 11);
      const gs = randn(rows * cols, 12);
      e.startGrad();
      const x = e.tensor(xs, [rows, cols], { requiresGrad: true });
      const b = e.tensor(bs, [cols], { requiresGrad: true });
      poisonPool(e, rows * cols);
      const y = addBias(x, b);
      expect(relErr(await y.read(), Array.from(xs, (v, i) => v + bs[i % cols]!))).toBeLessThan(1e-6);
      poisonPool(e, cols, 8);
      backward(y, e.tensor(gs, [rows, cols]));
      const db = new Float64Array(cols);
      for (let i = 0; i < gs.length; i++) db[i % cols]! += gs[i]!;
      expect(relErr(await x.grad!.read(), gs)).toBe(0);
      expect(relErr(await b.grad!.read(), db)).toBeLessThan(1e-5);
    });
});

describe('biasGelu (fused) vs float64 and the unfused pair', () => {
  it('the float64 gradients match central finite differences', () => {
    const rows = 3;
    const cols = 4;
    const xs = Float64Array.from(randn(rows * cols, 20));
    const bs = Float64Array.from(randn(cols, 21));
    const w = Float64Array.from(randn(rows * cols, 22));
    const f = (x: ArrayLike<number>, b: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < rows * cols; i++) s += w[i]! * gelu64(x[i]! + b[i % cols]!);
      return s;
    };
    const dx = xs.map((v, i) => w[i]! * geluGrad64(v + bs[i % cols]!));
    const db = new Float64Array(cols);
    dx.forEach((v, i) => (db[i % cols]! += v));
    expect(relErr(fdGrad((x) => f(x, bs), xs), dx)).toBeLessThan(1e-7);
    expect(relErr(fdGrad((b) => f(xs, b), bs), db)).toBeLessThan(1e-7);
  });

  for (const [rows, cols] of [[1, 1], [1, 3], [3, 17], [33, 128], [127, 33], [2048, 512], [3000, 5]] as [number, number][])
    it(`[${rows}, ${cols}]`, async () => {
      const e = await engine();
      const n = rows * cols;
      const xs = randn(n, 30 + cols, 1.5);
      const bs = randn(cols, 31, 0.5);
      const gs = randn(n, 32);
      const refY = Array.from(xs, (v, i) => gelu64(v + bs[i % cols]!));
      const refDx = Array.from(xs, (v, i) => gs[i]! * geluGrad64(v + bs[i % cols]!));
      const refDb = new Float64Array(cols);
      refDx.forEach((v, i) => (refDb[i % cols]! += v));
      const out: Float32Array[][] = [];
      for (const fused of [true, false]) {
        e.startGrad();
        const x = e.tensor(xs, [rows, cols], { requiresGrad: true });
        const b = e.tensor(bs, [cols], { requiresGrad: true });
        poisonPool(e, n);
        const y = (fused ? biasGelu : biasGeluUnfused)(x, b);
        poisonPool(e, n);
        poisonPool(e, cols, 8);
        backward(y, e.tensor(gs, [rows, cols]));
        out.push([(await y.read()) as Float32Array, (await x.grad!.read()) as Float32Array, (await b.grad!.read()) as Float32Array]);
      }
      const [f, u] = out;
      expect(relErr(f![0]!, refY)).toBeLessThan(1e-5);
      expect(relErr(f![1]!, refDx)).toBeLessThan(1e-5);
      expect(relErr(f![2]!, refDb)).toBeLessThan(1e-5);
      for (let k = 0; k < 3; k++) expect(relErr(f![k]!, u![k]!)).toBeLessThan(1e-5);
    });

  it('is deterministic (bitwise)', async () => {
    const e = await engine();
    const rows = 4000;
    const cols = 24;
    const xs = randn(rows * cols, 40);
    const run = async () => {
      e.startGrad();
      const x = e.tensor(xs, [rows, cols], { requiresGrad: true });
      const b = e.tensor(randn(cols, 41), [cols], { requiresGrad: true });
      const y = biasGelu(x, b);
      backward(y, e.tensor(randn(rows * cols, 42), [rows, cols]));
      return [await y.read(), await x.grad!.read(), await b.grad!.read()].map((a) => Array.from(a));
    };
    expect(await run()).toEqual(await run());
  });
});
