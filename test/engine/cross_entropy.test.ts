import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import type { Engine } from '../../engine/engine.ts';
import { argmax, crossEntropy, crossEntropyRows, maskedAccuracy, type RowVariant } from '../../engine/ops/cross_entropy.ts';
import { scale } from '../../engine/ops/elementwise.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { poison, poisonPool, randn, relErr, rng, useEngine } from '../helpers/gpu.ts';
import { argmaxRef, ceRef } from '../reference/cross_entropy.ts';

const engine = useEngine();
const VARIANTS: RowVariant[] = ['thread', 'wg'];

function inputs(N: number, V: number, seed: number, opts: { frac?: boolean; invalid?: boolean; spread?: number } = {}) {
  const r = rng(seed);
  const logits = randn(N * V, seed, opts.spread ?? 2);
  const targets = Int32Array.from({ length: N }, () => Math.floor(r() * V));
  const mask = Float32Array.from({ length: N }, () => (opts.frac ? r() * 2 : r() < 0.7 ? 1 : 0));
  if (N > 2) mask[0] = 1;
  if (opts.invalid && N > 3) {
    targets[1] = -100;
    targets[2] = V;
    mask[1] = 1;
    mask[2] = 1;
  }
  return { logits, targets, mask };
}

describe('crossEntropy', () => {
  it('the float64 gradient matches central finite differences', () => {
    const N = 4;
    const V = 5;
    const { logits, targets, mask } = inputs(N, V, 1, { frac: true });
    const x = Float64Array.from(logits);
    const ref = ceRef(x, targets, mask, N, V);
    const fd = x.map((_, i) => {
      const p = Float64Array.from(x);
      const m = Float64Array.from(x);
      p[i]! += 1e-6;
      m[i]! -= 1e-6;
      return (ceRef(p, targets, mask, N, V).loss - ceRef(m, targets, mask, N, V).loss) / 2e-6;
    });
    expect(relErr(fd, ref.grad)).toBeLessThan(1e-7);
  });

  for (const variant of VARIANTS)
    for (const [N, V, opts] of [
      [1, 1, {}],
      [1, 4, {}],
      [3, 17, { frac: true }],
      [33, 127, { invalid: true }],
      [127, 4, {}],
      [64, 512, { frac: true, invalid: true }],
      [5, 1003, { spread: 30 }],
      [3, 50257, {}],
    ] as [number, number, { frac?: boolean; invalid?: boolean; spread?: number }][])
      it(`${variant} N=${N} V=${V} ${JSON.stringify(opts)}: loss and gradient match float64`, async () => {
        const e = await engine();
        const { logits, targets, mask } = inputs(N, V, N * 7 + V, opts);
        const ref = ceRef(logits, targets, mask, N, V);
        e.startGrad();
        const x = e.tensor(logits, [N, V], { requiresGrad: true });
        poisonPool(e, N * V);
        poisonPool(e, 1, 8);
        const loss = crossEntropy(x, e.tensor(targets), e.tensor(mask), { variant });
        expect(loss.shape).toEqual([1]);
        const gScale = 2.5;
        backward(scale(loss, gScale));
        const got = await loss.read();
        expect(relErr(got, [ref.loss])).toBeLessThan(1e-5);
        expect(relErr(await x.grad!.read(), Array.from(ref.grad, (v) => v * gScale))).toBeLessThan(1e-5);
      });

  it('over 65535 rows (a 2-D dispatch grid of one workgroup per row), with argmax', async () => {
    const e = await engine();
    const N = 66_000;
    const V = 4;
    const { logits, targets, mask } = inputs(N, V, 12, { frac: true });
    const ref = ceRef(logits, targets, mask, N, V);
    const am = argmaxRef(logits, N, V);
    for (const variant of ['wg'] as RowVariant[]) {
      e.startGrad();
      const x = e.tensor(logits, [N, V], { requiresGrad: true });
      poisonPool(e, N * V);
      const loss = crossEntropy(x, e.tensor(targets), e.tensor(mask), { variant });
      backward(loss);
      expect(relErr(await loss.read(), [ref.loss])).toBeLessThan(1e-5);
      expect(relErr(await x.grad!.read(), ref.grad)).toBeLessThan(1e-5);
      poisonPool(e, N);
      expect(Array.from(await argmax(x, { variant }).read())).toEqual(Array.from(am));
    }
  });

  it('crossEntropyRows gives (mask·CE, mask) per row', async () => {
    const e = await engine();
    const N = 37;
    const V = 29;
    const { logits, targets, mask } = inputs(N, V, 14, { frac: true, invalid: true });
    const ref = new Float64Array(2 * N);
    for (let i = 0; i < N; i++) {
      const ok = targets[i]! >= 0 && targets[i]! < V;
      let m = -Infinity;
      for (let j = 0; j < V; j++) m = Math.max(m, logits[i * V + j]!);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(logits[i * V + j]! - m);
      ref[2 * i] = ok ? mask[i]! * (m + Math.log(s) - logits[i * V + targets[i]!]!) : 0;
      ref[2 * i + 1] = ok ? mask[i]! : 0;
    }
    for (const variant of VARIANTS) {
      poisonPool(e, 2 * N);
      const rows = crossEntropyRows(e.tensor(logits, [N, V]), e.tensor(targets), e.tensor(mask), { variant });
      expect(rows.shape).toEqual([N, 2]);
      expect(relErr(await rows.read(), ref)).toBeLessThan(1e-5);
    }
  });

  it('large logits (±1e4 offsets) stay finite and accurate', async () => {
    const e = await engine();
    const N = 6;
    const V = 37;
    const { logits, targets, mask } = inputs(N, V, 5);
    for (let i = 0; i < N; i++) for (let j = 0; j < V; j++) logits[i * V + j]! += (i % 2 ? 1 : -1) * 1e4;
    const ref = ceRef(logits, targets, mask, N, V);
    for (const variant of VARIANTS) {
      const loss = await crossEntropy(e.tensor(logits, [N, V]), e.tensor(targets), e.tensor(mask), { variant }).read();
      expect(Math.abs(loss[0]! - ref.loss)).toBeLessThan(1e-3 * Math.max(1, ref.loss));
    }
  });

  it('an all-zero mask gives loss 0 and zero gradients (not NaN)', async () => {
    const e = await engine();
    const N = 9;
    const V = 11;
    const { logits, targets } = inputs(N, V, 8);
    for (const variant of VARIANTS) {
      e.startGrad();
      const x = e.tensor(logits, [N, V], { requiresGrad: true });
      const loss = crossEntropy(x, e.tensor(targets), e.tensor(new Float32Array(N)), { variant });
      backward(loss);
      expect((await loss.read())[0]).toBe(0);
      expect(Array.from(await x.grad!.read()).every((v) => v === 0)).toBe(true);
    }
  });

  it('records nothing without gradients and is deterministic (bitwise)', async () => {
    const e = await engine();
    const N = 300;
    const V = 129;
    const { logits, targets, mask } = inputs(N, V, 9, { frac: true });
    const x = e.tensor(logits, [N, V]);
    const a = await crossEntropy(x, e.tensor(targets), e.tensor(mask)).read();
    const b = await crossEntropy(x, e.tensor(targets), e.tensor(mask)).read();
    expect(b[0]).toBe(a[0]);
    const run = async () => {
      e.startGrad();
      const xg = e.tensor(logits, [N, V], { requiresGrad: true });
      backward(crossEntropy(xg, e.tensor(targets), e.tensor(mask)));
      return Array.from(await xg.grad!.read());
    };
    expect(await run()).toEqual(await run());
  });
});

describe('argmax and maskedAccuracy', () => {
  for (const variant of VARIANTS)
    for (const [N, V] of [
      [1, 1],
      [3, 4],
      [17, 33],
      [127, 300],
      [4, 50257],
    ])
      it(`${variant} N=${N} V=${V}, ties → lowest index`, async () => {
        const e = await engine();
        const r = rng(N + V);
        // small integer logits: many ties
        const logits = Float32Array.from({ length: N * V }, () => Math.floor(r() * 5));
        if (N > 1) logits.fill(-3.5, V, 2 * V); // a row of all-equal values → 0
        const ref = argmaxRef(logits, N, V);
        const x = e.tensor(logits, [N, V]);
        poisonPool(e, N);
        const idx = argmax(x, { variant });
        expect(idx.dtype).toBe('i32');
        expect(Array.from(await idx.read())).toEqual(Array.from(ref));

        const targets = Int32Array.from({ length: N }, (_, i) => (i % 3 === 0 ? ref[i]! : Math.floor(r() * V)));
        if (N > 3) targets[2] = -1; // ignored row
        const mask = Float32Array.from({ length: N }, () => (r() < 0.8 ? 1 : 0));
        let correct = 0;
        let total = 0;
        for (let i = 0; i < N; i++) {
          const m = targets[i]! >= 0 && targets[i]! < V ? mask[i]! : 0;
          total += m;
          if (ref[i] === targets[i]) correct += m;
        }
        poisonPool(e, 2, 8);
        const acc = await maskedAccuracy(x, e.tensor(targets), e.tensor(mask), { variant }).read();
        expect(Array.from(acc)).toEqual([correct, total]);
      });

  it('argmax handles -inf rows and the largest float', async () => {
    const e = await engine();
    const logits = Float32Array.from([-Infinity, -Infinity, -Infinity, 1, 3.4028234663852886e38, 3.4028234663852886e38, -1, -3.4028234663852886e38, -2]);
    for (const variant of VARIANTS) expect(Array.from(await argmax(e.tensor(logits, [3, 3]), { variant }).read())).toEqual([0, 1, 0]);
  });
});
