/**
 * The elementwise family (kernels/elementwise.ts, engine/ops/elementwise.ts): fill, axpby (add, sub,
 * scale, accumulate) and mul against float64 on sizes that take the scalar form (not a multiple of 4)
 * and the vec4 form, with poisoned outputs; the backward rules of axpby and mul.
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { accumulate, add, axpby, fillInto, full, mul, scale, sub } from '../../engine/ops/elementwise.ts';
import { POISON, poison, poisonPool, randn, relErr, useEngine } from '../helpers/gpu.ts';
import { axpbyRef, mulRef } from '../reference/elementwise.ts';

const engine = useEngine();

// 1, 3, 17, 1001: scalar kernels; 4, 128, 4096: vec4 kernels.
const SIZES = [1, 3, 4, 17, 128, 1001, 4096];
const TOL = 1e-6;

describe('elementwise forward against float64', () => {
  for (const n of SIZES)
    it(`n=${n}: fill, add, sub, scale, axpby, mul, accumulate`, async () => {
      const e = await engine();
      const as = randn(n, 10 + n);
      const bs = randn(n, 20 + n);
      const a = e.tensor(as, [n]);
      const b = e.tensor(bs, [n]);
      const zeros = new Float64Array(n);

      poisonPool(e, n);
      expect(Array.from(await full(e, [n], 2.5).read())).toEqual(new Array(n).fill(2.5));
      const f = e.tensor(new Float32Array(n), [n]);
      poison(e, f);
      fillInto(f, -0.75);
      expect(Array.from(await f.read())).toEqual(new Array(n).fill(-0.75));

      const cases: [string, () => ReturnType<typeof add>, Float64Array][] = [
        ['add', () => add(a, b), axpbyRef(as, bs, 1, 1)],
        ['sub', () => sub(a, b), axpbyRef(as, bs, 1, -1)],
        ['scale', () => scale(a, -1.5), axpbyRef(as, zeros, -1.5, 0)],
        ['axpby', () => axpby(a, b, 0.3, -2.25), axpbyRef(as, bs, 0.3, -2.25)],
        ['mul', () => mul(a, b), mulRef(as, bs)],
      ];
      for (const [name, op, want] of cases) {
        poisonPool(e, n);
        const got = await op().read();
        expect(Array.from(got).includes(POISON), name).toBe(false);
        expect(relErr(got, want), name).toBeLessThanOrEqual(TOL);
      }

      // dst = alpha·src + beta·dst, in place
      const dst = e.tensor(bs, [n]);
      accumulate(dst, a, 0.5, 3);
      expect(relErr(await dst.read(), axpbyRef(as, bs, 0.5, 3))).toBeLessThanOrEqual(TOL);
      accumulate(dst, b); // defaults: dst = b + dst
      expect(relErr(await dst.read(), axpbyRef(bs, axpbyRef(as, bs, 0.5, 3), 1, 1))).toBeLessThanOrEqual(TOL);
    });

  it('rejects operands of different shapes', async () => {
    const e = await engine();
    const a = e.tensor(randn(6, 1), [2, 3]);
    const b = e.tensor(randn(6, 2), [3, 2]);
    expect(() => add(a, b)).toThrow(/shapes/);
    expect(() => mul(a, b)).toThrow(/shapes/);
    expect(() => accumulate(a, e.tensor(randn(5, 3), [5]))).toThrow(/5 elements into 6/);
  });
});

describe('elementwise backward', () => {
  for (const n of [3, 128])
    it(`n=${n}: d(α·a + β·b) = (α·g, β·g) and d(a ⊙ b) = (g ⊙ b, g ⊙ a)`, async () => {
      const e = await engine();
      const as = randn(n, 30 + n);
      const bs = randn(n, 40 + n);
      const gs = randn(n, 50 + n);
      const zeros = new Float64Array(n);
      e.startGrad();
      const a = e.tensor(as, [n], { requiresGrad: true });
      const b = e.tensor(bs, [n], { requiresGrad: true });
      backward(axpby(a, b, 0.7, -1.3), e.tensor(gs, [n]));
      expect(relErr(await a.grad!.read(), axpbyRef(gs, zeros, 0.7, 0))).toBeLessThanOrEqual(TOL);
      expect(relErr(await b.grad!.read(), axpbyRef(gs, zeros, -1.3, 0))).toBeLessThanOrEqual(TOL);

      e.startGrad();
      const c = e.tensor(as, [n], { requiresGrad: true });
      const d = e.tensor(bs, [n], { requiresGrad: true });
      backward(mul(c, d), e.tensor(gs, [n]));
      expect(relErr(await c.grad!.read(), mulRef(gs, bs))).toBeLessThanOrEqual(TOL);
      expect(relErr(await d.grad!.read(), mulRef(gs, as))).toBeLessThanOrEqual(TOL);
    });
});
