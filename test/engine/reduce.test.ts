import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import type { Engine } from '../../engine/engine.ts';
import { mean, planChunks, reduceAxisInto, sum, sumOfSquares, type ReduceVariant } from '../../engine/ops/reduce.ts';
import { planFor } from '../../engine/plan.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { fdGrad, POISON, poison, poisonPool, randArray, randn, relErr, useEngine } from '../helpers/gpu.ts';
import { refSum } from '../reference/reduce.ts';

const engine = useEngine();

describe('sum / mean over an axis', () => {
  const shapes: number[][] = [[1], [17], [3, 17, 33], [1, 127, 1], [33, 1, 5], [2, 3, 4, 5], [5000, 3], [3, 5000], [1, 2049, 1]];
  for (const shape of shapes)
    for (let axis = 0; axis < shape.length; axis++)
      it(`sum [${shape.join(',')}] axis ${axis} matches float64`, async () => {
        const e = await engine();
        const n = shape.reduce((a, b) => a * b, 1);
        const xs = randn(n, 11 + axis + shape.length);
        const x = e.tensor(xs, shape);
        const outN = n / shape[axis]!;
        poisonPool(e, outN);
        const s = sum(x, axis);
        expect(s.shape).toEqual(shape.length === 1 ? [1] : shape.filter((_, i) => i !== axis));
        expect(relErr(await s.read(), refSum(xs, shape, axis))).toBeLessThan(1e-5);
        poisonPool(e, outN);
        const m = mean(x, axis - shape.length, { keepDim: true });
        expect(m.shape).toEqual(shape.map((d, i) => (i === axis ? 1 : d)));
        expect(relErr(await m.read(), refSum(xs, shape, axis, 1 / shape[axis]!))).toBeLessThan(1e-5);
      });

  for (const [variant, outer, n, inner, off] of [
    ['axis', 3, 257, 33, 9],
    ['axis', 3, 257, 32, 8], // vec4 form with an offset
    ['rows', 7, 1031, 1, 9],
  ] as [ReduceVariant, number, number, number, number][])
    for (const nChunks of [1, 3, 17])
      it(`reduceAxisInto variant ${variant} [${outer}, ${n}, ${inner}], ${nChunks} chunks, offset ${off} and accumulate`, async () => {
        const e = await engine();
        const xs = randn(outer * n * inner, 5);
        const x = e.tensor(xs);
        const init = randArray(outer * inner + off, 6);
        const out = e.tensor(init);
        reduceAxisInto(e, x, out, outer, n, inner, { outOffset: off, accumulate: true, scale: 0.5, variant, nChunks });
        const got = await out.read();
        const ref = refSum(xs, [outer, n, inner], 1, 0.5);
        expect(Array.from(got.slice(0, off))).toEqual(Array.from(init.slice(0, off)));
        expect(relErr(got.slice(off), ref.map((v, i) => v + init[off + i]!))).toBeLessThan(1e-5);
        // overwrite mode writes every element of the region
        poison(e, out);
        reduceAxisInto(e, x, out, outer, n, inner, { outOffset: off, scale: 0.5, variant, nChunks });
        const got2 = await out.read();
        expect(got2[0]).toBe(Math.fround(POISON));
        expect(relErr(got2.slice(off), ref)).toBeLessThan(1e-5);
      });

  it('backward broadcasts the gradient (and the float64 gradient matches finite differences)', async () => {
    const e = await engine();
    const shape = [3, 17, 5];
    for (const [axis, isMean] of [[0, false], [1, true], [2, false], [1, false]] as [number, boolean][]) {
      const xs = randn(255, 21 + axis);
      const shapeOut = shape.filter((_, i) => i !== axis);
      const w = randn(shapeOut.reduce((a, b) => a * b, 1), 22);
      const scale = isMean ? 1 / shape[axis]! : 1;
      const f = (x: Float64Array): number => {
        const s = refSum(x, shape, axis, scale);
        let l = 0;
        for (let i = 0; i < s.length; i++) l += w[i]! * s[i]!;
        return l;
      };
      // analytic float64 gradient: w broadcast along the axis, times scale
      const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
      const n = shape[axis]!;
      const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      const ref = new Float64Array(255);
      for (let o = 0; o < outer; o++) for (let k = 0; k < n; k++) for (let i = 0; i < inner; i++) ref[(o * n + k) * inner + i] = scale * w[o * inner + i]!;
      expect(relErr(fdGrad(f, Float64Array.from(xs)), ref)).toBeLessThan(1e-7);

      e.startGrad();
      const x = e.tensor(xs, shape, { requiresGrad: true });
      const s = isMean ? mean(x, axis) : sum(x, axis);
      const wt = e.tensor(w, s.shape);
      const { mul } = await import('../../engine/ops/elementwise.ts');
      const loss = sum(mul(s, wt).reshape([-1]), 0);
      backward(loss);
      expect(relErr(await x.grad!.read(), ref)).toBeLessThan(1e-6);
    }
  });

  it('is deterministic (bitwise) with chunked reductions', async () => {
    const e = await engine();
    const xs = randn(40_000, 9);
    const x = e.tensor(xs, [10_000, 4]);
    const a = await sum(x, 0).read();
    const b = await sum(x, 0).read();
    expect(Array.from(b)).toEqual(Array.from(a));
  });
});

describe('planChunks', () => {
  it('covers every element; on hardware at most ⌈√n⌉ chunks', async () => {
    const e = await engine();
    const hw = { plan: planFor({ software: false, subgroupMinSize: 0, subgroupMaxSize: 0 }, { maxStorageBufferBindingSize: 2 ** 31 - 4 }, []) } as unknown as Engine;
    for (const eng of [e, hw])
      for (const [outputs, n, minChunk] of [
        [16, 63000, 16],
        [768, 4096, 16],
        [1, 4096, 32],
        [3, 10, 32],
        [100000, 64, 32],
      ] as [number, number, number][]) {
        const { nChunks, chunkLen } = planChunks(eng, outputs, n, minChunk);
        expect(nChunks * chunkLen).toBeGreaterThanOrEqual(n);
        expect((nChunks - 1) * chunkLen).toBeLessThan(n);
        if (eng === hw) expect(nChunks).toBeLessThanOrEqual(Math.ceil(Math.sqrt(n)));
      }
    // The needle model's LayerNorm parameter gradients (16 columns over 63 000 rows).
    expect(planChunks(hw, 16, 63000, 16)).toEqual({ nChunks: 251, chunkLen: 251 });
    if (e.plan.kind === 'software') expect(planChunks(e, 16, 63000, 16).nChunks).toBe(256);
  });
});

describe('sumOfSquares', () => {
  it('sums squares over tensors of odd sizes (float64 reference) and is deterministic', async () => {
    const e = await engine();
    const sizes = [1, 3, 17, 33, 127, 4097, 70_001];
    const datas = sizes.map((n, i) => randn(n, 100 + i));
    const ts = datas.map((d) => e.tensor(d));
    let ref = 0;
    for (const d of datas) for (const v of d) ref += v * v;
    poisonPool(e, 1);
    const r1 = await sumOfSquares(ts).read();
    const r2 = await sumOfSquares(ts).read();
    expect(relErr(r1, [ref])).toBeLessThan(1e-5);
    expect(r2[0]).toBe(r1[0]);
  });

  it('accepts storage regions of a large flat buffer', async () => {
    const e = await engine();
    const total = 4_200_000;
    const data = randn(total, 7);
    const buf = e.createStorage('flat test buffer', total * 4);
    e.write(buf, data);
    // three regions at 256-byte-aligned offsets, one of them millions of elements
    const regions = [
      { start: 0, n: 1000 },
      { start: 1024, n: 3 },
      { start: 2048, n: total - 2048 },
    ];
    let ref = 0;
    for (const r of regions) for (let i = r.start; i < r.start + r.n; i++) ref += data[i]! * data[i]!;
    const got = await sumOfSquares(
      regions.map((r) => ({ buffer: buf.buffer, offset: r.start * 4, byteLength: r.n * 4 })),
      e,
    ).read();
    expect(relErr(got, [ref])).toBeLessThan(1e-5);
    buf.buffer.destroy();
  });

  it('empty list gives 0; backward gives 2x·g', async () => {
    const e = await engine();
    expect((await sumOfSquares([], e).read())[0]).toBe(0);
    const xs = randn(33, 3);
    e.startGrad();
    const x = e.tensor(xs, [3, 11], { requiresGrad: true });
    const y = e.tensor(randn(5, 4), [5]); // no grad
    const s = sumOfSquares([x, y]);
    backward(s);
    const g = await x.grad!.read();
    expect(relErr(g, Array.from(xs, (v) => 2 * v))).toBeLessThan(1e-6);
    expect(y.grad).toBeNull();
  });
});
