/**
 * Grouped ops (`groups: G`): G independent LayerNorms / biases stacked along the rows, each group of
 * rows with its own parameters and its own parameter gradients (the models of a stacked run). Every
 * value is checked against float64 computed group by group, on both kernel plans (the hardware plan
 * splits the parameter reductions into chunks that must not cross a group).
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { addBias, biasGelu } from '../../engine/ops/activation.ts';
import { add, mul } from '../../engine/ops/elementwise.ts';
import { addLayerNorm, layerNorm, type LayerNormVariant } from '../../engine/ops/layernorm.ts';
import { sum } from '../../engine/ops/reduce.ts';
import type { PlanKind } from '../../engine/plan.ts';
import { poisonPool, randn, relErr, useEnginesAs } from '../helpers/gpu.ts';
import { geluGrad64, gelu64 } from '../reference/activation.ts';
import { lnBwdRef, lnRef } from '../reference/layernorm.ts';

const engineAs = useEnginesAs();

/** Concatenate per-group float64 results. */
function perGroup(G: number, f: (g: number) => Float64Array): Float64Array {
  const parts = Array.from({ length: G }, (_, g) => f(g));
  const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const slice = (a: ArrayLike<number>, g: number, n: number) => Float64Array.from({ length: n }, (_, i) => a[g * n + i]!);

const PLANS: PlanKind[] = ['software', 'hardware'];
const VARIANTS: LayerNormVariant[] = ['thread', 'wg'];
// [G, R (rows per group), d]: vec4 and scalar rows; 5000 rows per group exceed the software plan's
// one-pass limit (chunked partials, then per-group sums).
const LN_SHAPES: [number, number, number][] = [
  [3, 5, 16],
  [2, 7, 17],
  [4, 5000, 8],
];

describe('grouped layerNorm / addLayerNorm', () => {
  for (const plan of PLANS)
    for (const variant of VARIANTS)
      for (const [G, R, d] of LN_SHAPES)
        for (const fused of [false, true])
          it(`${plan} ${variant} ${fused ? 'addLayerNorm' : 'layerNorm'} G ${G} × [${R}, ${d}]: y, dx, dγ, dβ per group match float64`, async () => {
            const e = await engineAs(plan);
            const n = G * R * d;
            const xs = randn(n, 10 + d).map((v, i) => v + (i % 5) - 2);
            const rs = randn(n, 11 + d);
            const gs = randn(G * d, 12).map((v) => 1 + 0.3 * v);
            const bs = randn(G * d, 13, 0.2);
            const w = randn(n, 14); // the gradient reaching y
            const hs = Float64Array.from(xs, (v, i) => v + (fused ? rs[i]! : 0));
            const refY = perGroup(G, (g) => lnRef(slice(hs, g, R * d), R, d, slice(gs, g, d), slice(bs, g, d)).y);
            const refs = Array.from({ length: G }, (_, g) => lnBwdRef(slice(hs, g, R * d), R, d, slice(gs, g, d), slice(w, g, R * d)));
            e.startGrad();
            const x = e.tensor(xs, [G * R, d], { requiresGrad: true });
            const gamma = e.tensor(gs, [G, d], { requiresGrad: true });
            const beta = e.tensor(bs, [G, d], { requiresGrad: true });
            poisonPool(e, n, 6);
            const y = fused ? addLayerNorm(x, e.tensor(rs, [G * R, d]), gamma, beta, { variant, groups: G }).y : layerNorm(x, gamma, beta, { variant, groups: G });
            poisonPool(e, n, 6);
            poisonPool(e, G * d, 8);
            backward(y, e.tensor(w, [G * R, d]));
            expect(relErr(await y.read(), refY)).toBeLessThan(1e-5);
            expect(relErr(await x.grad!.read(), perGroup(G, (g) => refs[g]!.dx))).toBeLessThan(1e-5);
            expect(relErr(await gamma.grad!.read(), perGroup(G, (g) => refs[g]!.dg))).toBeLessThan(1e-5);
            expect(relErr(await beta.grad!.read(), perGroup(G, (g) => refs[g]!.db))).toBeLessThan(1e-5);
          });

  for (const plan of PLANS)
    it(`${plan}: preallocated dγ, dβ [G, d] are added into, per group`, async () => {
      const e = await engineAs(plan);
      const [G, R, d] = [3, 4500, 12];
      const xs = randn(G * R * d, 20);
      const gs = randn(G * d, 21).map((v) => 1 + 0.3 * v);
      const w = randn(G * R * d, 22);
      const g0 = randn(G * d, 23);
      const b0 = randn(G * d, 24);
      const gamma = e.tensor(gs, [G, d], { requiresGrad: true });
      const beta = e.tensor(randn(G * d, 25), [G, d], { requiresGrad: true });
      gamma.grad = e.tensor(g0, [G, d]);
      beta.grad = e.tensor(b0, [G, d]);
      e.startGrad();
      const y = layerNorm(e.tensor(xs, [G * R, d]), gamma, beta, { groups: G });
      backward(y, e.tensor(w, [G * R, d]));
      const refs = Array.from({ length: G }, (_, g) => lnBwdRef(slice(xs, g, R * d), R, d, slice(gs, g, d), slice(w, g, R * d)));
      expect(relErr(await gamma.grad!.read(), perGroup(G, (g) => refs[g]!.dg).map((v, i) => v + g0[i]!))).toBeLessThan(1e-5);
      expect(relErr(await beta.grad!.read(), perGroup(G, (g) => refs[g]!.db).map((v, i) => v + b0[i]!))).toBeLessThan(1e-5);
    });

  it('rejects parameters of the wrong size and rows that do not split into the groups', async () => {
    const e = await engineAs('software');
    const x = e.tensor(randn(10 * 4, 1), [10, 4]);
    expect(() => layerNorm(x, e.tensor(randn(8, 2)), e.tensor(randn(8, 3)), { groups: 3 })).toThrow(/expected 12 \(3 group\(s\) of 4\)/);
    expect(() => layerNorm(x, e.tensor(randn(12, 2)), e.tensor(randn(12, 3)), { groups: 3 })).toThrow(/10 rows do not split into 3 groups/);
    expect(() => layerNorm(x, e.tensor(randn(4, 2)), e.tensor(randn(4, 3)), { groups: 0 })).toThrow(/groups must be a positive integer/);
  });
});

describe('grouped addBias / biasGelu', () => {
  // [G, R, cols]: vec4 and scalar columns; 3000 rows per group split into chunks on both plans.
  const SHAPES: [number, number, number][] = [
    [3, 5, 8],
    [2, 9, 7],
    [4, 3000, 12],
  ];
  for (const plan of PLANS)
    for (const [G, R, C] of SHAPES)
      for (const withGelu of [false, true])
        it(`${plan} ${withGelu ? 'biasGelu' : 'addBias'} G ${G} × [${R}, ${C}]: y, dx, db per group match float64`, async () => {
          const e = await engineAs(plan);
          const n = G * R * C;
          const xs = randn(n, 30 + C, 2);
          const bs = randn(G * C, 31);
          const w = randn(n, 32);
          const z = Float64Array.from(xs, (v, i) => v + bs[Math.floor(i / (R * C)) * C + (i % C)]!);
          const refY = withGelu ? z.map(gelu64) : z;
          const refDx = withGelu ? z.map((v, i) => w[i]! * geluGrad64(v)) : Float64Array.from(w);
          const refDb = new Float64Array(G * C);
          for (let i = 0; i < n; i++) refDb[Math.floor(i / (R * C)) * C + (i % C)]! += refDx[i]!;
          e.startGrad();
          const x = e.tensor(xs, [G * R, C], { requiresGrad: true });
          const b = e.tensor(bs, [G, C], { requiresGrad: true });
          poisonPool(e, n, 6);
          const y = (withGelu ? biasGelu : addBias)(x, b, { groups: G });
          poisonPool(e, n, 6);
          poisonPool(e, G * C, 8);
          backward(y, e.tensor(w, [G * R, C]));
          expect(relErr(await y.read(), refY)).toBeLessThan(1e-5);
          expect(relErr(await x.grad!.read(), refDx)).toBeLessThan(1e-5);
          expect(relErr(await b.grad!.read(), refDb)).toBeLessThan(1e-5);
        });

  it('rejects a bias of the wrong size', async () => {
    const e = await engineAs('software');
    const x = e.tensor(randn(6 * 4, 1), [6, 4]);
    expect(() => biasGelu(x, e.tensor(randn(4, 2)), { groups: 2 })).toThrow(/expected 8 \(2 groups of the last dimension/);
    expect(() => addBias(x, e.tensor(randn(16, 2)), { groups: 4 })).toThrow(/6 rows do not split into 4 groups/);
  });

  it('G = 1 gives the ungrouped results bit for bit', async () => {
    const e = await engineAs('software');
    const [R, C] = [300, 16];
    const xs = randn(R * C, 40);
    const bs = randn(C, 41);
    const w = randn(R * C, 42);
    const run = async (opts: { groups?: number }) => {
      e.startGrad();
      const x = e.tensor(xs, [R, C], { requiresGrad: true });
      const b = e.tensor(bs, [C], { requiresGrad: true });
      const y = biasGelu(x, b, opts);
      backward(add(sum(mul(y, e.tensor(w, [R, C])).reshape([-1]), 0), e.tensor([0], [1])));
      return [await y.read(), await x.grad!.read(), await b.grad!.read()].map((a) => Array.from(a));
    };
    expect(await run({ groups: 1 })).toEqual(await run({}));
  });
});
