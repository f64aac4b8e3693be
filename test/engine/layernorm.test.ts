import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import type { Engine } from '../../engine/engine.ts';
import { mul } from '../../engine/ops/elementwise.ts';
import { addLayerNorm, addLayerNormUnfused, layerNorm, type LayerNormVariant } from '../../engine/ops/layernorm.ts';
import { sum } from '../../engine/ops/reduce.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { fdGrad, poison, poisonPool, randn, relErr, useEngine } from '../helpers/gpu.ts';
import { lnBwdRef, lnRef } from '../reference/layernorm.ts';

const engine = useEngine();

const VARIANTS: LayerNormVariant[] = ['thread', 'wg'];
const SHAPES: [number, number][] = [
  [1, 1],
  [1, 3],
  [3, 17],
  [17, 33],
  [127, 127],
  [33, 128],
  [5, 768],
  [3, 2048],
];

describe('layerNorm forward', () => {
  for (const variant of VARIANTS)
    for (const [rows, d] of SHAPES)
      it(`${variant} [${rows}, ${d}] matches float64`, async () => {
        const e = await engine();
        const xs = randn(rows * d, rows + d).map((v, i) => v * 2 + (i % 7) - 3 + 5); // offset means
        const gs = randn(d, 2).map((v) => 1 + 0.3 * v);
        const bs = randn(d, 3, 0.2);
        const x = e.tensor(xs, [rows, d]);
        const g = e.tensor(gs);
        const b = e.tensor(bs);
        poisonPool(e, rows * d);
        const y = layerNorm(x, g, b, { variant });
        const ref = lnRef(xs, rows, d, gs, bs);
        expect(relErr(await y.read(), ref.y)).toBeLessThan(1e-5);
      });

  it('accepts [B, T, d] input and eps as a number', async () => {
    const e = await engine();
    const xs = randn(2 * 3 * 17, 4);
    const gs = randn(17, 5);
    const bs = randn(17, 6);
    const y = layerNorm(e.tensor(xs, [2, 3, 17]), e.tensor(gs), e.tensor(bs), 0.5);
    expect(y.shape).toEqual([2, 3, 17]);
    expect(relErr(await y.read(), lnRef(xs, 6, 17, gs, bs, 0.5).y)).toBeLessThan(1e-5);
  });
});

describe('layerNorm backward', () => {
  it('the float64 analytic gradient matches central finite differences', () => {
    const rows = 3;
    const d = 5;
    const xs = Float64Array.from(randn(rows * d, 31));
    const gs = Float64Array.from(randn(d, 32));
    const bs = Float64Array.from(randn(d, 33));
    const w = Float64Array.from(randn(rows * d, 34));
    const loss = (x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) => lnRef(x, rows, d, g, b).y.reduce((s, v, i) => s + v * w[i]!, 0);
    const ref = lnBwdRef(xs, rows, d, gs, w);
    expect(relErr(fdGrad((x) => loss(x, gs, bs), xs), ref.dx)).toBeLessThan(1e-6);
    expect(relErr(fdGrad((g) => loss(xs, g, bs), gs), ref.dg)).toBeLessThan(1e-6);
    expect(relErr(fdGrad((b) => loss(xs, gs, b), bs), ref.db)).toBeLessThan(1e-6);
  });

  for (const variant of VARIANTS)
    for (const [rows, d] of [[1, 1], [3, 17], [127, 33], [1000, 17], [7, 768], [2, 2048]] as [number, number][])
      it(`${variant} [${rows}, ${d}]: dx, dγ, dβ match float64`, async () => {
        const e = await engine();
        const xs = randn(rows * d, 40 + d).map((v) => v + 1.5);
        const gs = randn(d, 41).map((v) => 1 + 0.3 * v);
        const bs = randn(d, 42, 0.1);
        const gys = randn(rows * d, 43);
        e.startGrad();
        const x = e.tensor(xs, [rows, d], { requiresGrad: true });
        const g = e.tensor(gs, [d], { requiresGrad: true });
        const b = e.tensor(bs, [d], { requiresGrad: true });
        const y = layerNorm(x, g, b, { variant });
        poisonPool(e, rows * d);
        poisonPool(e, d, 8);
        backward(y, e.tensor(gys, [rows, d]));
        const ref = lnBwdRef(xs, rows, d, gs, gys);
        expect(relErr(await x.grad!.read(), ref.dx)).toBeLessThan(1e-5);
        expect(relErr(await g.grad!.read(), ref.dg)).toBeLessThan(1e-5);
        expect(relErr(await b.grad!.read(), ref.db)).toBeLessThan(1e-5);
      });

  it('over 65535 rows (a 2-D dispatch grid of one workgroup per row)', async () => {
    const e = await engine();
    const rows = 66_000;
    const d = 4;
    const xs = randn(rows * d, 80);
    const gs = randn(d, 81);
    const bs = randn(d, 82);
    const gys = randn(rows * d, 83);
    const ref = lnRef(xs, rows, d, gs, bs);
    const refB = lnBwdRef(xs, rows, d, gs, gys);
    for (const variant of ['wg'] as LayerNormVariant[]) {
      e.startGrad();
      const x = e.tensor(xs, [rows, d], { requiresGrad: true });
      const g = e.tensor(gs, [d], { requiresGrad: true });
      const b = e.tensor(bs, [d], { requiresGrad: true });
      poisonPool(e, rows * d);
      const y = layerNorm(x, g, b, { variant });
      poisonPool(e, rows * d);
      backward(y, e.tensor(gys, [rows, d]));
      expect(relErr(await y.read(), ref.y)).toBeLessThan(1e-5);
      expect(relErr(await x.grad!.read(), refB.dx)).toBeLessThan(1e-5);
      expect(relErr(await g.grad!.read(), refB.dg)).toBeLessThan(1e-5);
      expect(relErr(await b.grad!.read(), refB.db)).toBeLessThan(1e-5);
    }
  });

  // rows 16 (one chunk: the partial kernel writes the gradients) and 5000 (above the one-pass limit
  // of software adapters: chunk partials, then one final dispatch for both); d 24.
  for (const rows of [16, 5000])
    it(`[${rows}, 24]: preallocated dγ, dβ are added into in place, in ${rows === 16 ? 'one dispatch' : 'two dispatches'}`, async () => {
      const e = await engine();
      const d = 24;
      const xs = randn(rows * d, 90).map((v) => v + 0.5);
      const gs = randn(d, 91).map((v) => 1 + 0.3 * v);
      const gys = randn(rows * d, 92);
      const g0 = randn(d, 93);
      const b0 = randn(d, 94);
      const x = e.tensor(xs, [rows, d]); // data: no gradient
      const g = e.tensor(gs, [d], { requiresGrad: true });
      const b = e.tensor(randn(d, 95), [d], { requiresGrad: true });
      g.grad = e.tensor(g0, [d]);
      b.grad = e.tensor(b0, [d]);
      const [gBuf, bBuf] = [g.grad, b.grad];
      const gy = e.tensor(gys, [rows, d]);
      e.startGrad();
      const y = layerNorm(x, g, b);
      const before = e.counters.dispatches;
      backward(y, gy);
      expect(e.counters.dispatches - before).toBe(rows === 16 ? 1 : 2);
      expect(g.grad).toBe(gBuf);
      expect(b.grad).toBe(bBuf);
      expect(x.grad).toBe(null);
      const ref = lnBwdRef(xs, rows, d, gs, gys);
      expect(relErr(await g.grad!.read(), ref.dg.map((v, i) => v + g0[i]!))).toBeLessThan(1e-5);
      expect(relErr(await b.grad!.read(), ref.db.map((v, i) => v + b0[i]!))).toBeLessThan(1e-5);
    });

  it('only γ wants a gradient, β has none: dγ added into its buffer, β.grad stays null', async () => {
    const e = await engine();
    const [rows, d] = [5000, 8];
    const xs = randn(rows * d, 96);
    const gs = randn(d, 97);
    const gys = randn(rows * d, 98);
    const g0 = randn(d, 99);
    const g = e.tensor(gs, [d], { requiresGrad: true });
    g.grad = e.tensor(g0, [d]);
    const b = e.tensor(randn(d, 100), [d]);
    e.startGrad();
    const x = e.tensor(xs, [rows, d], { requiresGrad: true });
    const y = layerNorm(x, g, b);
    backward(y, e.tensor(gys, [rows, d]));
    const ref = lnBwdRef(xs, rows, d, gs, gys);
    expect(b.grad).toBe(null);
    expect(relErr(await g.grad!.read(), ref.dg.map((v, i) => v + g0[i]!))).toBeLessThan(1e-5);
    expect(relErr(await x.grad!.read(), ref.dx)).toBeLessThan(1e-5);
  });

  it('is deterministic (bitwise), forward and backward', async () => {
    const e = await engine();
    const rows = 2000;
    const d = 64;
    const xs = randn(rows * d, 50);
    const run = async () => {
      e.startGrad();
      const x = e.tensor(xs, [rows, d], { requiresGrad: true });
      const g = e.tensor(randn(d, 51), [d], { requiresGrad: true });
      const b = e.tensor(randn(d, 52), [d], { requiresGrad: true });
      const y = layerNorm(x, g, b);
      backward(y, e.tensor(randn(rows * d, 53), [rows, d]));
      return [await y.read(), await x.grad!.read(), await g.grad!.read(), await b.grad!.read()].map((a) => Array.from(a));
    };
    expect(await run()).toEqual(await run());
  });
});

describe('addLayerNorm (fused residual + LayerNorm)', () => {
  for (const variant of VARIANTS)
    for (const [rows, d] of [[1, 3], [17, 33], [64, 128], [3, 1000]] as [number, number][])
      it(`${variant} [${rows}, ${d}]: h, y and all gradients match float64 and the unfused pair`, async () => {
        const e = await engine();
        const n = rows * d;
        const xs = randn(n, 60);
        const rs = randn(n, 61);
        const gs = randn(d, 62).map((v) => 1 + 0.3 * v);
        const bs = randn(d, 63, 0.1);
        const w1 = randn(n, 64); // gradient reaching h directly
        const w2 = randn(n, 65); // gradient reaching y
        const hs = xs.map((v, i) => v + rs[i]!);
        const refY = lnRef(Float64Array.from(xs, (v, i) => v + rs[i]!), rows, d, gs, bs).y;
        const refB = lnBwdRef(Float64Array.from(xs, (v, i) => v + rs[i]!), rows, d, gs, w2);
        const refDh = refB.dx.map((v, i) => v + w1[i]!);

        const results: Float32Array[][] = [];
        for (const fused of [true, false]) {
          e.startGrad();
          const x = e.tensor(xs, [rows, d], { requiresGrad: true });
          const r = e.tensor(rs, [rows, d], { requiresGrad: true });
          const g = e.tensor(gs, [d], { requiresGrad: true });
          const b = e.tensor(bs, [d], { requiresGrad: true });
          poisonPool(e, n, 6);
          const { h, y } = (fused ? addLayerNorm : addLayerNormUnfused)(x, r, g, b, { variant });
          const loss = sum(mul(h, e.tensor(w1, [rows, d])).reshape([-1]), 0);
          const loss2 = sum(mul(y, e.tensor(w2, [rows, d])).reshape([-1]), 0);
          const { add } = await import('../../engine/ops/elementwise.ts');
          poisonPool(e, n, 6);
          poisonPool(e, d, 8);
          backward(add(loss, loss2));
          results.push([await h.read(), await y.read(), await x.grad!.read(), await r.grad!.read(), await g.grad!.read(), await b.grad!.read()] as Float32Array[]);
        }
        const [fz, un] = results;
        expect(relErr(fz![0]!, hs)).toBeLessThan(1e-6);
        expect(relErr(fz![1]!, refY)).toBeLessThan(1e-5);
        expect(relErr(fz![2]!, refDh)).toBeLessThan(1e-5);
        expect(relErr(fz![3]!, refDh)).toBeLessThan(1e-5);
        expect(relErr(fz![4]!, refB.dg)).toBeLessThan(1e-5);
        expect(relErr(fz![5]!, refB.db)).toBeLessThan(1e-5);
        for (let k = 0; k < 6; k++) expect(relErr(fz![k]!, un![k]!)).toBeLessThan(1e-5);
      });

  it('backward with only y used (no gradient at h)', async () => {
    const e = await engine();
    const rows = 5;
    const d = 33;
    const xs = randn(rows * d, 70);
    const rs = randn(rows * d, 71);
    const gs = randn(d, 72);
    const gys = randn(rows * d, 73);
    e.startGrad();
    const x = e.tensor(xs, [rows, d], { requiresGrad: true });
    const r = e.tensor(rs, [rows, d]); // no gradient wanted
    const { y } = addLayerNorm(x, r, e.tensor(gs), e.tensor(randn(d, 74)));
    backward(y, e.tensor(gys, [rows, d]));
    const ref = lnBwdRef(Float64Array.from(xs, (v, i) => v + rs[i]!), rows, d, gs, gys);
    expect(relErr(await x.grad!.read(), ref.dx)).toBeLessThan(1e-5);
    expect(r.grad).toBeNull();
  });
});
