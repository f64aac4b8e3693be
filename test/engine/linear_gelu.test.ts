/**
 * linearGelu (engine/ops/matmul.ts): GELU(x·W + b), the MLP's first layer. Both of its ways (the
 * fused bias + GELU after a bias-free product, or the bias in the product's epilogue and GELU
 * elementwise) must give float64's y, dx, dW and db, single and stacked (W [G, in, out]); and each
 * plan must take the way its weight-gradient product calls for: the shared (split-K) variants the
 * second, every other variant (the software plan's tiles, naive) the first.
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { chooseMatmulVariant, linearGelu } from '../../engine/ops/matmul.ts';
import type { PlanKind } from '../../engine/plan.ts';
import { takesSplitK } from '../../kernels/matmul.ts';
import { poisonPool, randn, relErr, useEnginesAs } from '../helpers/gpu.ts';
import { refLinearGelu } from '../reference/matmul.ts';

const engineAs = useEnginesAs();

describe('linearGelu', () => {
  // [G, R (rows per group), in, out]: a tiny product (naive on both plans), a single layer whose
  // weight gradient is a shared product on the hardware plan, and a stack of 3 whose batched weight
  // gradient is one too.
  // The last field: whether the hardware plan's choice for dW is a shared variant.
  const SHAPES: [number, number, number, number, boolean][] = [
    [1, 50, 8, 12, false],
    [1, 64, 64, 256, true],
    [3, 40, 64, 96, true],
  ];
  const PLANS: PlanKind[] = ['software', 'hardware'];
  for (const plan of PLANS)
    for (const [G, R, I, O, sharedOnHardware] of SHAPES)
      it(`${plan} G ${G} × [${R}, ${I}] · [${I}, ${O}]: y, dx, dW, db match float64, through the plan's way`, async () => {
        const e = await engineAs(plan);
        const xs = randn(G * R * I, 40 + O);
        const ws = randn(G * I * O, 41 + I, 0.2);
        const bs = randn(G * O, 42);
        const gy = randn(G * R * O, 43);
        const ref = refLinearGelu(xs, ws, bs, gy, G, R, I, O);
        e.startGrad();
        const x = e.tensor(xs, [G * R, I], { requiresGrad: true });
        const w = e.tensor(ws, G === 1 ? [I, O] : [G, I, O], { requiresGrad: true });
        const b = e.tensor(bs, G === 1 ? [O] : [G, O], { requiresGrad: true });
        const profiled = e.profiler.supported;
        if (profiled) e.profiler.start();
        poisonPool(e, G * R * O, 6);
        const y = linearGelu(x, w, b);
        poisonPool(e, G * R * O, 6);
        poisonPool(e, G * O, 8);
        backward(y, e.tensor(gy, [G * R, O]));
        expect(relErr(await y.read(), ref.y)).toBeLessThan(1e-5);
        expect(relErr(await x.grad!.read(), ref.dx)).toBeLessThan(1e-5);
        expect(relErr(await w.grad!.read(), ref.dw)).toBeLessThan(1e-5);
        expect(relErr(await b.grad!.read(), ref.db)).toBeLessThan(1e-5);
        if (!profiled) return;
        const kernels = (await e.profiler.stop()).dispatches.map((d) => d.kernel);
        // The way: the dW product's variant decides (dW = xᵀ·dY: [in, out] over K = rows).
        const shared = takesSplitK(chooseMatmulVariant(e, I, O, R, G, false));
        expect(shared).toBe(plan === 'hardware' && sharedOnHardware);
        const fused = kernels.filter((k) => k.startsWith('activation.bias_gelu'));
        const plain = kernels.filter((k) => /^activation\.gelu(_bwd)?[.[]|^activation\.gelu(_bwd)?$/.test(k));
        if (shared) {
          expect(fused).toEqual([]);
          expect(plain.length).toBe(2); // GELU and its backward
          expect(kernels.some((k) => k.startsWith('matmul.shared'))).toBe(true);
        } else {
          expect(plain).toEqual([]);
          expect(fused.some((k) => k.startsWith('activation.bias_gelu_bwd'))).toBe(true);
          expect(fused.length).toBeGreaterThanOrEqual(2); // forward, backward (+ the partials' sum)
        }
      });
});
