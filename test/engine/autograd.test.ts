import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { biasGelu, gelu } from '../../engine/ops/activation.ts';
import { add, mul } from '../../engine/ops/elementwise.ts';
import { layerNorm } from '../../engine/ops/layernorm.ts';
import { sum } from '../../engine/ops/reduce.ts';
import { fdGrad, randn, relErr, useEngine } from '../helpers/gpu.ts';
import { geluGrad64 } from '../reference/activation.ts';
import { compositeGrad, compositeLoss } from '../reference/autograd.ts';

const engine = useEngine();

describe('autograd', () => {
  it('a tensor used twice gets the sum of its gradients', async () => {
    const e = await engine();
    const n = 37;
    const xs = randn(n, 1);
    e.startGrad();
    const x = e.tensor(xs, [n], { requiresGrad: true });
    // loss = Σ (gelu(x) + x·x): dx = gelu'(x) + 2x  (x is used three times)
    const loss = sum(add(gelu(x), mul(x, x)), 0);
    backward(loss);
    expect(relErr(await x.grad!.read(), Array.from(xs, (v) => geluGrad64(v) + 2 * v))).toBeLessThan(1e-5);
  });

  it('LayerNorm → biasGelu → weighted sum matches the float64 gradient (checked by finite differences)', async () => {
    const e = await engine();
    const R = 5;
    const d = 17;
    const xs = randn(R * d, 2);
    const gs = randn(d, 3).map((v) => 1 + 0.2 * v);
    const bes = randn(d, 4, 0.1);
    const bs = randn(d, 5, 0.3);
    const w = randn(R, 6);

    const ref = compositeGrad(xs, gs, bes, bs, w, R, d);
    const f = (which: 0 | 1 | 2 | 3) => (v: Float64Array) =>
      compositeLoss(which === 0 ? v : xs, which === 1 ? v : gs, which === 2 ? v : bes, which === 3 ? v : bs, w, R, d);
    expect(relErr(fdGrad(f(0), xs), ref.dx)).toBeLessThan(1e-6);
    expect(relErr(fdGrad(f(1), gs), ref.dg)).toBeLessThan(1e-6);
    expect(relErr(fdGrad(f(2), bes), ref.dbe)).toBeLessThan(1e-6);
    expect(relErr(fdGrad(f(3), bs), ref.db)).toBeLessThan(1e-6);

    e.startGrad();
    const x = e.tensor(xs, [R, d], { requiresGrad: true });
    const g = e.tensor(gs, [d], { requiresGrad: true });
    const be = e.tensor(bes, [d], { requiresGrad: true });
    const b = e.tensor(bs, [d], { requiresGrad: true });
    const rowSums = sum(biasGelu(layerNorm(x, g, be), b), -1); // [R]
    const loss = sum(mul(rowSums, e.tensor(w)), 0);
    expect(relErr(await loss.read(), [compositeLoss(xs, gs, bes, bs, w, R, d)])).toBeLessThan(1e-5);
    backward(loss);
    expect(relErr(await x.grad!.read(), ref.dx)).toBeLessThan(1e-5);
    expect(relErr(await g.grad!.read(), ref.dg)).toBeLessThan(1e-5);
    expect(relErr(await be.grad!.read(), ref.dbe)).toBeLessThan(1e-5);
    expect(relErr(await b.grad!.read(), ref.db)).toBeLessThan(1e-5);
  });

  it('no-grad mode records nothing', async () => {
    const e = await engine();
    e.startGrad();
    const x = e.tensor(randn(12, 7), [3, 4], { requiresGrad: true });
    const g = e.tensor(randn(4, 8), [4], { requiresGrad: true });
    const y = e.noGrad(() => sum(biasGelu(layerNorm(x, g, g), g), 0));
    expect(e.tape!.length).toBe(0);
    expect(y.requiresGrad).toBe(false);
    // outside noGrad the same ops are recorded
    const z = sum(layerNorm(x, g, g), 0);
    expect(e.tape!.length).toBe(2);
    expect(z.requiresGrad).toBe(true);
    e.tape = null;
  });

  it('a leaf with requiresGrad = false gets no gradient', async () => {
    const e = await engine();
    e.startGrad();
    const x = e.tensor(randn(20, 9), [4, 5], { requiresGrad: true });
    const b = e.tensor(randn(5, 10), [5]); // frozen
    const g = e.tensor(randn(5, 11), [5]); // frozen
    backward(sum(sum(biasGelu(layerNorm(x, g, g), b), 1), 0));
    expect(x.grad).not.toBeNull();
    expect(b.grad).toBeNull();
    expect(g.grad).toBeNull();
  });

  it('a preallocated .grad accumulates over two backward passes, in place', async () => {
    const e = await engine();
    const R = 3;
    const d = 8;
    const xs = randn(R * d, 12);
    const gs = randn(d, 13);
    const bs = randn(d, 14);
    const w = new Float32Array(R).fill(1);
    const x = e.tensor(xs, [R, d]);
    const g = e.tensor(gs, [d], { requiresGrad: true });
    const be = e.tensor(new Float32Array(d), [d]);
    const b = e.tensor(bs, [d], { requiresGrad: true });
    const init = randn(d, 15);
    const gGrad = e.tensor(init, [d]);
    g.grad = gGrad;
    for (let pass = 0; pass < 2; pass++) {
      e.startGrad();
      backward(sum(sum(biasGelu(layerNorm(x, g, be), b), -1), 0));
    }
    expect(g.grad).toBe(gGrad); // the same buffer, accumulated in place
    const ref = compositeGrad(xs, gs, new Float32Array(d), bs, w, R, d);
    expect(relErr(await gGrad.read(), Array.from(init, (v, i) => v + 2 * ref.dg[i]!))).toBeLessThan(1e-5);
    // b had no preallocated gradient: the first pass set it, the second added into it
    expect(relErr(await b.grad!.read(), Array.from(ref.db, (v) => 2 * v))).toBeLessThan(1e-5);
  });

  it('forward and backward inside one tidy release every temporary', async () => {
    const e = await engine();
    const x = e.tensor(randn(64 * 32, 16), [64, 32], { requiresGrad: true });
    const g = e.tensor(randn(32, 17), [32], { requiresGrad: true });
    const b = e.tensor(randn(32, 18), [32], { requiresGrad: true });
    const step = () =>
      e.tidy(() => {
        e.startGrad();
        const loss = sum(sum(biasGelu(layerNorm(x, g, b), b), -1), 0);
        backward(loss);
        return loss;
      });
    const once = async () => {
      // Leaf gradients outlive the tidy (they are results); release them before the next step.
      for (const t of [x, g, b]) {
        t.grad?.dispose();
        t.grad = null;
      }
      const loss = step();
      await loss.read();
      loss.dispose();
    };
    await once();
    const inUse = e.pool.stats().inUseBytes;
    const created = e.pool.stats().buffersCreated;
    for (let i = 0; i < 3; i++) await once();
    expect(e.pool.stats().buffersCreated).toBe(created); // steady state allocates nothing new
    expect(e.pool.stats().inUseBytes).toBe(inUse);
  });
});
