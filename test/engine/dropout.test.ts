import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import type { Engine } from '../../engine/engine.ts';
import { dropout } from '../../engine/ops/dropout.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { PHILOX_WGSL } from '../../kernels/random.ts';
import { kernel, ro, rw } from '../../kernels/spec.ts';
import { poison, poisonPool, randn, useEngine } from '../helpers/gpu.ts';
import { keepRef } from '../reference/dropout.ts';
import { PHILOX_KAT as KAT, philox4x32 } from '../reference/random.ts';

const engine = useEngine();

describe('Philox4x32-10', () => {
  it('the TypeScript reference reproduces the published known-answer vectors', () => {
    for (const k of KAT) expect(philox4x32(k.ctr, k.key)).toEqual(k.out);
  });

  it('the WGSL generator (kernels/random.ts) reproduces them too', async () => {
    const e = await engine();
    const spec = kernel({
      name: 'test.philox_kat',
      bindings: [ro('inp', 'array<u32>'), rw('out', 'array<u32>')],
      uniforms: [['count', 'u32']],
      workgroupSize: [1, 1, 1],
      body: `${PHILOX_WGSL}
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.count) { return; }
  let c = vec4<u32>(inp[6u * i], inp[6u * i + 1u], inp[6u * i + 2u], inp[6u * i + 3u]);
  let k = vec2<u32>(inp[6u * i + 4u], inp[6u * i + 5u]);
  let r = philox4x32(c, k);
  out[4u * i] = r.x; out[4u * i + 1u] = r.y; out[4u * i + 2u] = r.z; out[4u * i + 3u] = r.w;
}`,
    });
    const inp = e.tensor(Uint32Array.from(KAT.flatMap((k) => [...k.ctr, ...k.key])));
    const out = e.tensor(new Uint32Array(4 * KAT.length));
    e.dispatch(spec, [inp, out], { count: KAT.length }, [KAT.length, 1, 1]);
    expect(Array.from(await out.read())).toEqual(KAT.flatMap((k) => k.out));
  });
});

describe('dropout', () => {
  for (const [n, p] of [
    [1, 0.5],
    [3, 0.1],
    [17, 0.5],
    [33, 0.9],
    [127, 0.25],
    [4096, 0.1],
    [100_003, 0.3],
  ])
    it(`n=${n} p=${p}: mask equals the TypeScript Philox reference; backward reuses it`, async () => {
      const e = await engine();
      const xs = randn(n, n);
      const gs = randn(n, n + 1);
      const opts = { seed: 1234 + n, step: 77, stream: 3 };
      const keep = keepRef(n, p, opts.seed, opts.step, opts.stream);
      const s = 1 / (1 - p);
      e.startGrad();
      const x = e.tensor(xs, [n], { requiresGrad: true });
      poisonPool(e, n);
      const y = dropout(x, p, opts);
      poisonPool(e, n);
      backward(y, e.tensor(gs));
      const yv = await y.read();
      const gv = await x.grad!.read();
      const bad: number[] = [];
      for (let i = 0; i < n; i++) {
        if (yv[i] !== (keep[i] ? Math.fround(xs[i]! * Math.fround(s)) : 0)) bad.push(i);
        if (gv[i] !== (keep[i] ? Math.fround(gs[i]! * Math.fround(s)) : 0)) bad.push(i);
      }
      expect(bad.slice(0, 10)).toEqual([]);
    });

  it('keeps about 1 − p of the elements; seed, step and stream change the mask', async () => {
    const e = await engine();
    const n = 200_000;
    const x = e.tensor(new Float32Array(n).fill(1));
    const frac = async (p: number, o: { seed: number; step?: number; stream?: number }) => {
      const y = (await dropout(x, p, o).read()) as Float32Array;
      let kept = 0;
      for (let i = 0; i < n; i++) if (y[i] !== 0) kept++;
      return { kept: kept / n, y };
    };
    for (const p of [0.1, 0.5, 0.9]) {
      const { kept } = await frac(p, { seed: 5 });
      // binomial standard deviation at n = 2e5 is ≤ 0.0012
      expect(Math.abs(kept - (1 - p))).toBeLessThan(0.006);
    }
    const base = (await frac(0.5, { seed: 5, step: 1, stream: 0 })).y;
    for (const o of [{ seed: 6, step: 1, stream: 0 }, { seed: 5, step: 2, stream: 0 }, { seed: 5, step: 1, stream: 1 }]) {
      const y = (await frac(0.5, o)).y;
      let same = 0;
      for (let i = 0; i < n; i++) if ((y[i] !== 0) === (base[i] !== 0)) same++;
      expect(same / n).toBeLessThan(0.53); // independent masks agree on about half
    }
  });

  it('is deterministic (bitwise); p = 0 is the identity with no dispatch; p = 1 zeroes', async () => {
    const e = await engine();
    const xs = randn(1001, 3);
    const x = e.tensor(xs);
    const a = await dropout(x, 0.3, { seed: 9, step: 4 }).read();
    const b = await dropout(x, 0.3, { seed: 9, step: 4 }).read();
    expect(Array.from(b)).toEqual(Array.from(a));
    const before = e.counters.dispatches;
    expect(dropout(x, 0, { seed: 1 })).toBe(x);
    expect(e.counters.dispatches).toBe(before);
    expect(Array.from(await dropout(x, 1, { seed: 1 }).read()).every((v) => v === 0)).toBe(true);
    expect(() => dropout(x, 1.5, { seed: 1 })).toThrow(/outside/);
  });
});
