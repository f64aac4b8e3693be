import { describe, expect, it } from 'vitest';
import { backward, startGrad } from '../../engine/autograd.ts';
import { add, mul } from '../../engine/ops/elementwise.ts';
import { ParameterStore, type ParamDecl } from '../../engine/params.ts';
import { Tensor } from '../../engine/tensor.ts';
import { FLAG_DECAY, FLAG_TRAINABLE } from '../../kernels/adamw.ts';
import { POISON, randArray, randn, useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

const SIZES: [string, number[], Partial<ParamDecl>][] = [
  ['one', [1], {}],
  ['three', [3], { decay: false }],
  ['w17', [17], {}],
  ['m33x5', [33, 5], {}],
  ['b127', [127], { decay: false }],
  ['frozen', [7, 3], { trainable: false }],
  ['w256', [16, 16], {}],
  ['w1000', [1000], {}],
];

function decls(seed: number, withInit = true): ParamDecl[] {
  return SIZES.map(([name, shape, extra], i) => ({
    name,
    shape,
    ...(withInit ? { init: randArray(shape.reduce((a, b) => a * b, 1), seed + i) } : {}),
    ...extra,
  }));
}

const bitsEqual = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('ParameterStore layout', () => {
  it('aligns offsets, packs chunks within the limit, and backs tensors with the arenas', async () => {
    const e = await engine();
    for (const maxChunkBytes of [undefined, 4096]) {
      const store = ParameterStore.create(e, decls(1), { maxChunkBytes });
      const align = Math.max(16, e.device.limits.minStorageBufferOffsetAlignment);
      expect(store.layout.align).toBe(align);
      if (maxChunkBytes) expect(store.chunks).toBeGreaterThan(1);
      else expect(store.chunks).toBe(1);
      expect(store.numel).toBe(SIZES.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0));
      const ends: [number, number, number][] = [];
      for (const name of store.names()) {
        const s = store.slot(name);
        expect(s.offset % align).toBe(0);
        expect(s.offset + s.numel * 4).toBeLessThanOrEqual(store.layout.maxChunkBytes);
        ends.push([s.chunk, s.offset, s.offset + s.numel * 4]);
        const p = store.get(name);
        expect(p.ownership).toBe('arena');
        expect(p.storage.buffer).toBe(store.params.buffers[s.chunk]);
        expect(p.storage.offset).toBe(s.offset);
        expect(p.name).toBe(name);
        const trainable = store.isTrainable(name);
        expect(p.requiresGrad).toBe(trainable);
        if (trainable) {
          expect(p.grad).not.toBeNull();
          expect(p.grad!.storage.buffer).toBe(store.grads.buffers[s.chunk]);
          expect(p.grad!.storage.offset).toBe(s.offset);
          expect(p.grad!.shape).toEqual(p.shape);
        } else expect(p.grad).toBeNull();
      }
      // no overlaps
      for (let i = 0; i < ends.length; i++)
        for (let j = i + 1; j < ends.length; j++) {
          const [ci, a0, a1] = ends[i]!;
          const [cj, b0, b1] = ends[j]!;
          if (ci === cj) expect(a1 <= b0 || b1 <= a0).toBe(true);
        }
      for (let c = 0; c < store.chunks; c++) {
        expect(store.chunkElements(c) % 4).toBe(0);
        expect(store.params.buffers[c]!.size).toBeLessThanOrEqual(e.device.limits.maxStorageBufferBindingSize);
      }
      expect(store.names()).toEqual(SIZES.map(([n]) => n));
      expect(store.entries().map(([n, t]) => [n, t.shape])).toEqual(SIZES.map(([n, s]) => [n, s]));
      store.destroy();
    }
  });

  it('rejects bad declarations, naming the tensor', async () => {
    const e = await engine();
    expect(() => ParameterStore.create(e, [{ name: 'a', shape: [3] }, { name: 'a', shape: [4] }])).toThrow(/"a" declared twice/);
    expect(() => ParameterStore.create(e, [{ name: 'w.bad', shape: [2, 3], init: new Float32Array(5) }])).toThrow(/"w\.bad".*6/);
    expect(() => ParameterStore.create(e, [{ name: 'neg', shape: [2, -1] }])).toThrow(/"neg"/);
    expect(() => ParameterStore.create(e, [{ name: 'huge.weight', shape: [2000] }], { maxChunkBytes: 4096 })).toThrow(/huge\.weight/);
  });
});

describe('ParameterStore data', () => {
  it('initial values, load/read round trip across chunks, padding and moments zero', async () => {
    const e = await engine();
    const ds = decls(7);
    const store = ParameterStore.create(e, ds, { maxChunkBytes: 4096 });
    const got = await store.readAll();
    for (const d of ds) expect(bitsEqual(got.get(d.name)!, d.init!), d.name).toBe(true);
    const { m, v } = await store.readOptimizerState();
    for (const d of ds) {
      expect(m.get(d.name)!.every((x) => x === 0)).toBe(true);
      expect(v.get(d.name)!.every((x) => x === 0)).toBe(true);
    }
    // load one, then all
    const w17 = randn(17, 99);
    store.load('w17', w17, [17]);
    expect(bitsEqual((await store.readAll()).get('w17')!, w17)).toBe(true);
    const fresh = new Map(ds.map((d, i) => [d.name, randn(d.init!.length, 500 + i)]));
    store.loadAll(fresh);
    const back = await store.readAll();
    for (const [n, x] of fresh) expect(bitsEqual(back.get(n)!, x), n).toBe(true);
    // padding of the params arena is still zero
    for (let c = 0; c < store.chunks; c++) {
      const raw = await store.readChunk(store.params, c);
      const used = new Uint8Array(raw.length);
      for (const n of store.names()) {
        const s = store.slot(n);
        if (s.chunk === c) used.fill(1, s.offset / 4, s.offset / 4 + s.numel);
      }
      expect(raw.every((x, i) => used[i] || x === 0)).toBe(true);
    }
    store.destroy();
  });

  it('load errors name the tensor', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(3));
    expect(() => store.load('m33x5', new Float32Array(164))).toThrow(/"m33x5".*\[33, 5\].*165.*164/);
    expect(() => store.load('m33x5', new Float32Array(165), [5, 33])).toThrow(/"m33x5" has shape \[33, 5\], got \[5, 33\]/);
    expect(() => store.load('nope', new Float32Array(1))).toThrow(/no parameter named "nope"/);
    expect(() => store.get('nope')).toThrow(/"nope"/);
    const all = new Map(decls(3).map((d) => [d.name, d.init!]));
    all.delete('b127');
    expect(() => store.loadAll(all)).toThrow(/missing parameter\(s\) "b127"/);
    expect(() => store.loadAll(all, { strict: false })).not.toThrow();
    all.set('extra.weight', new Float32Array(2));
    expect(() => store.loadAll(all, { strict: false })).toThrow(/unknown parameter\(s\) "extra\.weight"/);
    all.delete('extra.weight');
    all.set('w17', new Float32Array(16));
    expect(() => store.loadAll(all, { strict: false })).toThrow(/"w17"/);
    store.destroy();
  });

  it('zeroGrad clears every gradient with one recorded clear per chunk', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(5), { maxChunkBytes: 4096 });
    for (const [, t] of store.entries()) if (t.grad) e.write(t.grad, new Float32Array(t.numel).fill(POISON));
    await e.sync();
    const submits = e.counters.submits;
    store.zeroGrad();
    expect(e.hasPendingWork).toBe(true);
    expect(e.counters.submits).toBe(submits);
    const grads = await store.readGrads();
    for (const [n, g] of grads) expect(g.every((x) => x === 0), n).toBe(true);
    for (let c = 0; c < store.chunks; c++) expect((await store.readChunk(store.grads, c)).every((x) => x === 0)).toBe(true);
    store.destroy();
  });

  it('optimizer state round trip is bitwise exact and checks names and lengths', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(9), { maxChunkBytes: 4096 });
    const m = new Map(store.entries().map(([n, t], i) => [n, randn(t.numel, 40 + i)]));
    const v = new Map(store.entries().map(([n, t], i) => [n, randArray(t.numel, 80 + i, 0, 1)]));
    store.loadOptimizerState({ m, v });
    const back = await store.readOptimizerState();
    for (const n of store.names()) {
      expect(bitsEqual(back.m.get(n)!, m.get(n)!)).toBe(true);
      expect(bitsEqual(back.v.get(n)!, v.get(n)!)).toBe(true);
    }
    const short = new Map(m);
    short.set('w1000', new Float32Array(999));
    expect(() => store.loadOptimizerState({ m: short, v })).toThrow(/m of "w1000" has 999 values/);
    const missing = new Map(v);
    missing.delete('one');
    expect(() => store.loadOptimizerState({ m, v: missing })).toThrow(/v of "one" is missing/);
    store.resetOptimizerState();
    const zero = await store.readOptimizerState();
    for (const n of store.names()) expect(zero.m.get(n)!.every((x) => x === 0) && zero.v.get(n)!.every((x) => x === 0)).toBe(true);
    store.destroy();
  });
});

describe('ParameterStore flags and freezing', () => {
  /** Expected 2-bit flags of every element of chunk c, built independently of buildFlags. */
  function expectedFlags(store: ParameterStore, c: number): number[] {
    const out = new Array<number>(store.chunkElements(c)).fill(0);
    for (const n of store.names()) {
      const s = store.slot(n);
      if (s.chunk !== c) continue;
      const bits = (store.decays(n) ? FLAG_DECAY : 0) | (store.isTrainable(n) ? FLAG_TRAINABLE : 0);
      for (let k = 0; k < s.numel; k++) out[s.offset / 4 + k] = bits;
    }
    return out;
  }

  async function deviceFlags(store: ParameterStore, c: number): Promise<number[]> {
    const f = store.flags[c]!;
    const t = new Tensor(store.engine, [store.flagWords(c)], 'u32', f, 'arena');
    const words = (await t.read()) as Uint32Array;
    return Array.from({ length: store.chunkElements(c) }, (_, k) => (words[k >> 4]! >>> ((k & 15) * 2)) & 3);
  }

  it('the flags buffer holds decay and trainable bits per element (padding 0), rebuilt on freezing', async () => {
    const e = await engine();
    // align 16 puts tensors mid-word, so the head/tail paths of the packer are exercised
    for (const align of [undefined, 16]) {
      const store = ParameterStore.create(e, decls(2), { maxChunkBytes: 4096, align });
      for (let c = 0; c < store.chunks; c++) {
        expect(Array.from(store.buildFlags(c)).length).toBe(store.flagWords(c));
        expect(await deviceFlags(store, c)).toEqual(expectedFlags(store, c));
      }
      expect(store.setTrainable(/^(w|m)/, false)).toBe(4);
      expect(store.setTrainable('frozen', true)).toBe(1);
      for (let c = 0; c < store.chunks; c++) expect(await deviceFlags(store, c)).toEqual(expectedFlags(store, c));
      store.destroy();
    }
  });

  it('freezing drops the gradient, keeps its slot zero, and unfreezing restores it', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(4));
    const w = store.get('w17');
    const g = w.grad!;
    e.write(g, randn(17, 1));
    expect(store.setTrainable('w17', false)).toBe(1);
    expect(w.requiresGrad).toBe(false);
    expect(w.grad).toBeNull();
    expect(store.isTrainable('w17')).toBe(false);
    expect(store.trainable()).not.toContain(w);
    expect((await store.readGrads()).get('w17')!.every((x) => x === 0)).toBe(true);
    store.setTrainable(['w17'], true);
    expect(w.requiresGrad).toBe(true);
    expect(w.grad).toBe(g);
    expect(() => store.setTrainable(/^no_such/, false)).toThrow(/no parameter matches/);
    store.destroy();
  });

  it('autograd adds into the arena gradients in place; a frozen parameter gets none', async () => {
    const e = await engine();
    const n = 33;
    const store = ParameterStore.create(e, [
      { name: 'p1', shape: [n], init: randn(n, 1) },
      { name: 'p2', shape: [n], init: randn(n, 2), trainable: false },
    ]);
    const x = e.tensor(randn(n, 3));
    const gy = e.tensor(randn(n, 4));
    const xs = (await x.read()) as Float32Array;
    const gys = (await gy.read()) as Float32Array;
    store.zeroGrad();
    for (let micro = 0; micro < 2; micro++) {
      startGrad(e);
      const y = add(mul(store.get('p1'), x), mul(store.get('p2'), x));
      backward(y, gy);
    }
    const grads = await store.readGrads();
    const g1 = grads.get('p1')!;
    for (let i = 0; i < n; i++) expect(g1[i]).toBeCloseTo(2 * gys[i]! * xs[i]!, 5);
    expect(grads.get('p2')!.every((v) => v === 0)).toBe(true);
    expect(store.get('p2').grad).toBeNull();
    store.destroy();
  });
});
