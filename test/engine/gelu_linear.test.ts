/**
 * The MLP's GELU inside its products (engine/ops/matmul.ts `geluLinear`, `linearGeluLinear`; the
 * matmul kernels' `geluA` operand and `dgeluC` epilogue in kernels/matmul.ts): against float64 on
 * every variant that has them (naive, shared, shared128), on both plans (the software plan compiles
 * the software shape of `shared`), single and stacked, with split-K under the GELU operand, in
 * precision f16 and bf16; the whole MLP in each plan's way.
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { add } from '../../engine/ops/elementwise.ts';
import { encodeMatmul, geluLinear, linearGeluLinear } from '../../engine/ops/matmul.ts';
import type { PlanKind } from '../../engine/plan.ts';
import { castHalf, setPrecision } from '../../engine/precision.ts';
import { randn, relErr, useEnginesAs } from '../helpers/gpu.ts';
import { refGeluLinear, refLinearStack } from '../reference/matmul.ts';

const engineAs = useEnginesAs();
const PLANS: PlanKind[] = ['software', 'hardware'];

describe('geluLinear', () => {
  // [G, R, in, out]: odd sizes (scalar loads everywhere), aligned ones (shared128's vec4 loads and
  // stores), a stack of 3.
  const SHAPES: [number, number, number, number][] = [
    [1, 37, 21, 19],
    [1, 40, 32, 48],
    [3, 24, 16, 20],
  ];
  // shared128 has no software shape: the hardware plan runs the one kernel there is.
  for (const plan of PLANS)
    for (const variant of plan === 'software' ? ['naive', 'shared'] : ['naive', 'shared', 'shared128'])
      for (const [G, R, I, O] of SHAPES)
        it(`${plan} ${variant} G ${G} × [${R}, ${I}] · [${I}, ${O}]: y, dz, dW, db match float64`, async () => {
          const e = await engineAs(plan);
          const zs = randn(G * R * I, 50 + I, 1.5);
          const ws = randn(G * I * O, 51 + O, 0.3);
          const bs = randn(G * O, 52);
          const gs = randn(G * R * O, 53);
          const ref = refGeluLinear(zs, ws, bs, gs, G, R, I, O);
          e.startGrad();
          const z = e.tensor(zs, [G * R, I], { requiresGrad: true });
          const w = e.tensor(ws, G === 1 ? [I, O] : [G, I, O], { requiresGrad: true });
          const b = e.tensor(bs, G === 1 ? [O] : [G, O], { requiresGrad: true });
          const y = geluLinear(z, w, b, { variant });
          backward(y, e.tensor(gs, [G * R, O]));
          expect(relErr(await y.read(), ref.y)).toBeLessThan(1e-5);
          expect(relErr(await z.grad!.read(), ref.dz)).toBeLessThan(1e-5);
          expect(relErr(await w.grad!.read(), ref.dw)).toBeLessThan(1e-5);
          expect(relErr(await b.grad!.read(), ref.db)).toBeLessThan(1e-5);
        });

  it('hardware plan: a long K splits under the GELU operand (dW over 1100 rows), and the plan choice runs; gradients accumulate', async () => {
    const e = await engineAs('hardware');
    const [R, I, O] = [1100, 16, 24];
    const zs = randn(R * I, 60, 1.5);
    const ws = randn(I * O, 61, 0.3);
    const bs = randn(O, 62);
    const gs = randn(R * O, 63);
    const ref = refGeluLinear(zs, ws, bs, gs, 1, R, I, O);
    e.startGrad();
    const z = e.tensor(zs, [R, I], { requiresGrad: true });
    const w = e.tensor(ws, [I, O], { requiresGrad: true });
    const b = e.tensor(bs, [O], { requiresGrad: true });
    const profiled = e.profiler.supported;
    if (profiled) e.profiler.start();
    // Used twice: the second backward adds to the gradients.
    const y1 = geluLinear(z, w, b);
    backward(add(y1, geluLinear(z, w, b)), e.tensor(gs, [R, O]));
    expect(relErr(await y1.read(), ref.y)).toBeLessThan(1e-5);
    expect(relErr(await z.grad!.read(), ref.dz.map((v) => 2 * v))).toBeLessThan(1e-5);
    expect(relErr(await w.grad!.read(), ref.dw.map((v) => 2 * v))).toBeLessThan(1e-5);
    expect(relErr(await b.grad!.read(), ref.db.map((v) => 2 * v))).toBeLessThan(1e-5);
    if (profiled) {
      const kernels = (await e.profiler.stop()).dispatches.map((d) => d.kernel);
      expect(kernels.some((k) => /^matmul\.shared(128)?\.tn\[.*ga/.test(k))).toBe(true);
      expect(kernels.some((k) => k.startsWith('matmul.splitk_sum'))).toBe(true);
      expect(kernels.some((k) => /^matmul\.shared(128)?\.nt\[.*dg/.test(k))).toBe(true);
    }
  });

  for (const type of ['f16', 'bf16'] as const)
    it(`hardware plan, precision ${type}: GELU of the half z, the derivative from the f32 z, against float64`, async () => {
      const e = await engineAs('hardware');
      setPrecision(e, type);
      try {
        const [R, I, O] = [30, 12, 20];
        const z = e.tensor(randn(R * I, 70, 1.5), [R, I], { requiresGrad: true });
        const w = e.tensor(randn(I * O, 71, 0.3), [I, O], { requiresGrad: true });
        const b = e.tensor(randn(O, 72), [O], { requiresGrad: true });
        const g = e.tensor(randn(R * O, 73), [R, O]);
        const [zq, wq, gq] = await Promise.all([castHalf(z).read(), castHalf(w).read(), castHalf(g).read()]);
        const [zs, bs, gs] = await Promise.all([z.read(), b.read(), g.read()]);
        const ref = refGeluLinear(zs, wq, bs, gs, 1, R, I, O, { z: zq, w: wq, gy: gq });
        e.startGrad();
        const y = geluLinear(z, w, b);
        backward(y, g);
        expect(relErr(await y.read(), ref.y)).toBeLessThan(1e-5);
        expect(relErr(await z.grad!.read(), ref.dz)).toBeLessThan(1e-5);
        expect(relErr(await w.grad!.read(), ref.dw)).toBeLessThan(1e-5);
        // The bias gradient from the half dY (the tiles the shared kernel stages).
        expect(relErr(await b.grad!.read(), ref.db)).toBeLessThan(1e-5);
      } finally {
        setPrecision(e, 'f32');
      }
    });

  it('refuses a variant without the GELU operand and a split GELU-derivative epilogue', async () => {
    const e = await engineAs('software');
    const z = e.tensor(randn(8 * 8, 80), [8, 8]);
    const w = e.tensor(randn(8 * 8, 81), [8, 8]);
    expect(() => geluLinear(z, w, null, { variant: 'reg4x4' })).toThrow(/GELU operand and epilogue need one of naive, shared, shared128; got reg4x4/);
    expect(() => encodeMatmul(e, z, w, e.empty([8, 8]), { M: 8, N: 8, K: 8, variant: 'shared', dgelu: z, splitK: 2 })).toThrow(/GELU-derivative epilogue needs one split of K/);
  });
});

describe('linearGeluLinear (the MLP)', () => {
  // The MLP of a d-32 model over 48 rows, single and as a stack of 2.
  for (const plan of PLANS)
    for (const G of [1, 2])
      it(`${plan} G ${G}: gelu(x·W1 + b1)·W2 + b2 and every gradient match float64, in the plan's way`, async () => {
        const e = await engineAs(plan);
        const [R, D, H] = [48, 32, 128];
        const xs = randn(G * R * D, 90);
        const w1s = randn(G * D * H, 91, 0.2);
        const b1s = randn(G * H, 92, 0.5);
        const w2s = randn(G * H * D, 93, 0.1);
        const b2s = randn(G * D, 94);
        const gs = randn(G * R * D, 95);
        const z = refLinearStack(xs, w1s, b1s, new Float64Array(G * R * H), G, R, D, H).y;
        const ref2 = refGeluLinear(z, w2s, b2s, gs, G, R, H, D);
        // The first layer's gradients for the gradient the second gives its input.
        const ref1 = refLinearStack(xs, w1s, b1s, ref2.dz, G, R, D, H);
        e.startGrad();
        const shape = (s: number[]) => (G === 1 ? s : [G, ...s]);
        const x = e.tensor(xs, [G * R, D], { requiresGrad: true });
        const w1 = e.tensor(w1s, shape([D, H]), { requiresGrad: true });
        const b1 = e.tensor(b1s, shape([H]), { requiresGrad: true });
        const w2 = e.tensor(w2s, shape([H, D]), { requiresGrad: true });
        const b2 = e.tensor(b2s, shape([D]), { requiresGrad: true });
        const profiled = e.profiler.supported;
        if (profiled) e.profiler.start();
        const y = linearGeluLinear(x, w1, b1, w2, b2);
        backward(y, e.tensor(gs, [G * R, D]));
        expect(relErr(await y.read(), ref2.y)).toBeLessThan(1e-5);
        expect(relErr(await x.grad!.read(), ref1.dx)).toBeLessThan(1e-5);
        expect(relErr(await w1.grad!.read(), ref1.dw)).toBeLessThan(1e-5);
        expect(relErr(await b1.grad!.read(), ref1.db)).toBeLessThan(1e-5);
        expect(relErr(await w2.grad!.read(), ref2.dw)).toBeLessThan(1e-5);
        expect(relErr(await b2.grad!.read(), ref2.db)).toBeLessThan(1e-5);
        if (!profiled) return;
        const kernels = (await e.profiler.stop()).dispatches.map((d) => d.kernel);
        const activation = kernels.filter((k) => k.startsWith('activation.'));
        const fused = kernels.filter((k) => /\[.*(ga|dg)/.test(k));
        expect(e.plan.matmul.geluInProducts).toBe(plan === 'hardware');
        if (plan === 'hardware') {
          // No GELU pass: the forward's second product and dW2 read gelu(z), dY·W2ᵀ gives dz.
          expect(activation).toEqual([]);
          expect(fused.length).toBe(3);
        } else {
          expect(fused).toEqual([]);
          expect(activation.some((k) => k.startsWith('activation.bias_gelu_bwd'))).toBe(true);
        }
      });
});
