import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../engine/engine.ts';
import { AdamW, type AdamWOptions } from '../../engine/optim.ts';
import { ParameterStore, type ParamDecl } from '../../engine/params.ts';
import { loadCheckpoint, readSidecar, saveCheckpoint } from '../../src/io/checkpoint.ts';
import { POISON, randArray, randn, relErr, useEngine } from '../helpers/gpu.ts';
import { type RefHp, type RefParam, refNorm, refStep } from '../reference/optim.ts';

const engine = useEngine();

// ------------------------------------------------------------------ fixtures

/** Odd sizes so padding and vec4 edges are exercised; one decay-excluded, one frozen tensor. */
function decls(seed: number): ParamDecl[] {
  const spec: [string, number[], Partial<ParamDecl>][] = [
    ['one', [1], {}],
    ['three', [3], {}],
    ['w17x3', [17, 3], {}],
    ['b127', [127], { decay: false }],
    ['frozen33', [33], { trainable: false }],
    ['w5x41', [5, 41], {}],
    ['b64', [64], { decay: false }],
    ['w1000', [1000], {}],
  ];
  return spec.map(([name, shape, extra], i) => ({ name, shape, init: randArray(shape.reduce((a, b) => a * b, 1), seed + i), ...extra }));
}

function gradsFor(store: ParameterStore, step: number, scale = 1): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  store.entries().forEach(([name, t], i) => {
    if (!store.isTrainable(name)) return;
    out.set(name, randn(t.numel, 1000 * step + i, scale));
  });
  return out;
}

function writeGrads(e: Engine, store: ParameterStore, grads: Map<string, Float32Array>): void {
  for (const [name, g] of grads) e.write(store.get(name).grad!, g);
}

function refFrom(ds: ParamDecl[]): RefParam[] {
  return ds.map((d) => {
    const n = d.shape.reduce((a, b) => a * b, 1);
    return {
      name: d.name,
      p: Float64Array.from(d.init!),
      m: new Float64Array(n),
      v: new Float64Array(n),
      decay: d.decay ?? true,
      trainable: d.trainable ?? true,
    };
  });
}

const lrAt = (t: number): number => 0.01 * (1 - t / 20) + 1e-4; // a schedule: lr changes every step

interface Case {
  label: string;
  opts: AdamWOptions;
  maxChunkBytes?: number;
}

const cases: Case[] = [
  { label: 'clipping active, decay on', opts: { maxGradNorm: 0.5, weightDecay: 0.1 } },
  { label: 'clipping inactive (large maxNorm), decay on', opts: { maxGradNorm: 1e6, weightDecay: 0.1 } },
  { label: 'no clipping, no decay', opts: { maxGradNorm: null, weightDecay: 0 } },
  { label: 'clipping active, several chunks', opts: { maxGradNorm: 1, weightDecay: 0.05 }, maxChunkBytes: 4096 },
  { label: 'scalar reference variant, clipping active', opts: { maxGradNorm: 0.5, weightDecay: 0.1, variant: 'scalar', unroll: 1 } },
  { label: 'vec4 without unrolling, several chunks', opts: { maxGradNorm: 0.5, weightDecay: 0.1, unroll: 1 }, maxChunkBytes: 4096 },
  { label: 'scalar unrolled ×3, clipping inactive', opts: { maxGradNorm: 1e3, weightDecay: 0.1, variant: 'scalar', unroll: 3 } },
  { label: 'vec4 unrolled ×5', opts: { maxGradNorm: 0.5, weightDecay: 0.02, unroll: 5 }, maxChunkBytes: 4096 },
  { label: 'β, eps non-default, few norm groups', opts: { maxGradNorm: 2, weightDecay: 0.3, beta1: 0.8, beta2: 0.95, eps: 1e-6, normGroups: 1 }, maxChunkBytes: 4608 },
];

async function runSteps(
  e: Engine,
  store: ParameterStore,
  opt: AdamW,
  from: number,
  to: number,
  onNorm?: (t: number, norm: number) => void,
): Promise<void> {
  for (let t = from; t <= to; t++) {
    const g = gradsFor(store, t);
    writeGrads(e, store, g);
    e.write(opt.lastGradNorm(), new Float32Array([POISON]));
    opt.step(lrAt(t));
    if (onNorm) onNorm(t, (await opt.lastGradNorm().read())[0]!);
  }
}

describe('AdamW against the float64 formula (10 steps)', () => {
  for (const c of cases) {
    it(c.label, async () => {
      const e = await engine();
      const ds = decls(11);
      const store = ParameterStore.create(e, ds, { maxChunkBytes: c.maxChunkBytes });
      if (c.maxChunkBytes) expect(store.chunks).toBeGreaterThanOrEqual(2);
      const opt = new AdamW(store, c.opts);
      const ref = refFrom(ds);
      const hp: RefHp = { beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weightDecay, maxGradNorm: opt.maxGradNorm };
      let clipped = 0;
      for (let t = 1; t <= 10; t++) {
        const g = gradsFor(store, t);
        writeGrads(e, store, g);
        e.write(opt.lastGradNorm(), new Float32Array([POISON]));
        opt.step(lrAt(t));
        const norm = refStep(ref, g, lrAt(t), t, hp);
        if (hp.maxGradNorm !== null && norm > hp.maxGradNorm) clipped++;
        const got = (await opt.lastGradNorm().read())[0]!;
        expect(relErr([got], [norm])).toBeLessThanOrEqual(1e-5);
      }
      if (c.opts.maxGradNorm !== null && c.opts.maxGradNorm! < 10) expect(clipped).toBe(10);
      else expect(clipped).toBe(0);
      expect(opt.t).toBe(10);

      const p = await store.readAll();
      const { m, v } = await store.readOptimizerState();
      for (const q of ref) {
        if (!q.trainable) continue;
        expect(relErr(p.get(q.name)!, q.p), `${q.name} p`).toBeLessThanOrEqual(1e-5);
        expect(relErr(m.get(q.name)!, q.m), `${q.name} m`).toBeLessThanOrEqual(1e-5);
        expect(relErr(v.get(q.name)!, q.v), `${q.name} v`).toBeLessThanOrEqual(1e-5);
      }
      // The frozen tensor and its moments are untouched, bit for bit.
      const fd = ds.find((d) => d.name === 'frozen33')!;
      expect(p.get('frozen33')).toEqual(fd.init);
      expect(m.get('frozen33')!.every((x) => x === 0)).toBe(true);
      expect(v.get('frozen33')!.every((x) => x === 0)).toBe(true);
      // The decay-excluded tensor moved (it trains) but matches the no-decay reference (checked above);
      // with decay it would differ by lr·wd·p per step, far above the tolerance when wd > 0.
      if (hp.weightDecay > 0) {
        const decayed = refFrom(ds).map((q) => ({ ...q, decay: true }));
        for (let t = 1; t <= 10; t++) refStep(decayed, gradsFor(store, t), lrAt(t), t, hp);
        const b = decayed.find((q) => q.name === 'b127')!;
        expect(relErr(p.get('b127')!, b.p)).toBeGreaterThan(1e-4);
      }
      // Padding stays zero in every arena.
      await expectPaddingZero(store);
      opt.destroy();
      store.destroy();
    });
  }
});

async function expectPaddingZero(store: ParameterStore): Promise<void> {
  for (const arena of [store.params, store.grads, store.m, store.v]) {
    for (let c = 0; c < store.chunks; c++) {
      const raw = await store.readChunk(arena, c);
      const used = new Uint8Array(raw.length);
      for (const n of store.names()) {
        const s = store.slot(n);
        if (s.chunk === c) used.fill(1, s.offset / 4, s.offset / 4 + s.numel);
      }
      for (let i = 0; i < raw.length; i++) if (!used[i] && raw[i] !== 0) throw new Error(`${arena.label}[${c}] padding element ${i} is ${raw[i]}`);
    }
  }
}

describe('gradient norm on the device', () => {
  it('matches float64 over a multi-chunk arena with many workgroups and strided loops', async () => {
    const e = await engine();
    // ~300k elements over 3 chunks of ≤ 512 KiB; odd sizes.
    const ds: ParamDecl[] = [
      { name: 'a', shape: [100_003] },
      { name: 'b', shape: [77, 1001] },
      { name: 'c', shape: [17] },
      { name: 'd', shape: [120_001] },
      { name: 'frozen', shape: [999], trainable: false },
    ];
    for (const normGroups of [1024, 3]) {
      const store = ParameterStore.create(e, ds, { maxChunkBytes: 512 * 1024 });
      expect(store.chunks).toBe(3);
      const opt = new AdamW(store, { maxGradNorm: 1, normGroups });
      const g = gradsFor(store, 7, 0.01);
      writeGrads(e, store, g);
      e.write(opt.lastGradNorm(), new Float32Array([POISON]));
      const before = e.counters.submits;
      opt.recordGradNorm();
      expect(e.counters.submits).toBe(before); // recorded only
      const got = (await opt.lastGradNorm().read())[0]!;
      expect(relErr([got], [refNorm(g)])).toBeLessThanOrEqual(1e-5);
      opt.destroy();
      store.destroy();
    }
  });

  it('is zero for zero gradients, and a step on zero gradients without decay changes nothing', async () => {
    const e = await engine();
    const ds = decls(5);
    const store = ParameterStore.create(e, ds);
    const opt = new AdamW(store, { maxGradNorm: 1, weightDecay: 0 });
    opt.step(0.1);
    expect((await opt.lastGradNorm().read())[0]).toBe(0);
    const p = await store.readAll();
    for (const d of ds) expect(p.get(d.name)).toEqual(d.init);
    opt.destroy();
    store.destroy();
  });
});

describe('AdamW recording, determinism, resume', () => {
  it('step() records without submitting or reading back, and a new lr compiles nothing', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(3), { maxChunkBytes: 4096 });
    const opt = new AdamW(store, { maxGradNorm: 1 });
    writeGrads(e, store, gradsFor(store, 1));
    await e.sync();
    const c0 = { ...e.counters };
    opt.step(1e-3);
    expect(e.counters.submits).toBe(c0.submits);
    expect(e.counters.readbacks).toBe(c0.readbacks);
    // norm: one per chunk + finish; adamw: one per chunk
    expect(e.counters.dispatches - c0.dispatches).toBe(2 * store.chunks + 1);
    e.flush();
    const pipelines = e.pipelines.size;
    const bg = e.counters.bindGroupsCreated;
    opt.step(5e-4);
    opt.step(1e-5);
    e.flush();
    expect(e.pipelines.size).toBe(pipelines);
    expect(e.counters.bindGroupsCreated).toBe(bg);
    opt.destroy();
    store.destroy();
  });

  it('two runs are bitwise equal (params, moments, norm)', async () => {
    const e = await engine();
    const results: { p: Map<string, Float32Array>; m: Map<string, Float32Array>; v: Map<string, Float32Array>; norms: number[] }[] = [];
    for (let run = 0; run < 2; run++) {
      const store = ParameterStore.create(e, decls(21), { maxChunkBytes: 4096 });
      const opt = new AdamW(store, { maxGradNorm: 0.5, weightDecay: 0.1 });
      const norms: number[] = [];
      await runSteps(e, store, opt, 1, 5, (_, n) => norms.push(n));
      results.push({ p: await store.readAll(), ...(await store.readOptimizerState()), norms });
      opt.destroy();
      store.destroy();
    }
    const [a, b] = results as [(typeof results)[0], (typeof results)[0]];
    expect(a.norms).toEqual(b.norms);
    for (const k of ['p', 'm', 'v'] as const)
      for (const [n, x] of a[k]) expect(Buffer.from(x.buffer).equals(Buffer.from(b[k].get(n)!.buffer)), `${k} ${n}`).toBe(true);
  });

  it('checkpoint and restore continue bitwise identically (same layout with clipping; another layout without)', async () => {
    const e = await engine();
    for (const { opts, otherChunk } of [
      { opts: { maxGradNorm: 0.5, weightDecay: 0.1 } as AdamWOptions, otherChunk: 4096 },
      { opts: { maxGradNorm: null, weightDecay: 0.1 } as AdamWOptions, otherChunk: 8192 },
    ]) {
      const ds = decls(31);
      const store = ParameterStore.create(e, ds, { maxChunkBytes: 4096 });
      const opt = new AdamW(store, opts);
      await runSteps(e, store, opt, 1, 4);
      const savedParams = await store.readAll();
      const ck = await opt.checkpoint();
      expect(ck.step).toBe(4);
      await runSteps(e, store, opt, 5, 8);
      const straight = { p: await store.readAll(), ...(await store.readOptimizerState()) };

      const store2 = ParameterStore.create(e, ds.map((d) => ({ ...d, init: undefined })), { maxChunkBytes: otherChunk });
      store2.loadAll(savedParams);
      const opt2 = new AdamW(store2, { lr: 123 });
      opt2.restore(ck);
      expect(opt2.t).toBe(4);
      expect(opt2.state()).toEqual({ ...opt.state(), step: 4, lastLr: lrAt(4) });
      await runSteps(e, store2, opt2, 5, 8);
      const resumed = { p: await store2.readAll(), ...(await store2.readOptimizerState()) };
      for (const k of ['p', 'm', 'v'] as const)
        for (const [n, x] of straight[k]) expect(Buffer.from(x.buffer).equals(Buffer.from(resumed[k].get(n)!.buffer)), `${k} ${n}`).toBe(true);
      for (const o of [opt, opt2]) o.destroy();
      for (const s of [store, store2]) s.destroy();
    }
  });

  it('every variant and unroll gives bitwise the same result', async () => {
    const e = await engine();
    const runs: Map<string, Float32Array>[] = [];
    for (const [variant, unroll] of [['vec4', 1], ['vec4', 4], ['vec4', 7], ['scalar', 1], ['scalar', 3]] as const) {
      const store = ParameterStore.create(e, decls(41));
      const opt = new AdamW(store, { maxGradNorm: 0.5, weightDecay: 0.1, variant, unroll });
      await runSteps(e, store, opt, 1, 3);
      const p = await store.readAll();
      const { m, v } = await store.readOptimizerState();
      runs.push(new Map([...[...p].map(([n, x]) => [`p ${n}`, x] as const), ...[...m].map(([n, x]) => [`m ${n}`, x] as const), ...[...v].map(([n, x]) => [`v ${n}`, x] as const)]));
      opt.destroy();
      store.destroy();
    }
    for (const r of runs.slice(1))
      for (const [k, x] of runs[0]!) expect(Buffer.from(x.buffer).equals(Buffer.from(r.get(k)!.buffer)), k).toBe(true);
  });

  it('the state records the learning rate applied at the last step, not a default (and a checkpoint saves it)', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(5));
    const opt = new AdamW(store, { lr: 1e-3, weightDecay: 0.1 });
    expect(opt.state().lastLr).toBeNull();
    await runSteps(e, store, opt, 1, 2); // lrAt(1), lrAt(2)
    expect(opt.state().lastLr).toBe(lrAt(2));
    for (let t = 3; t <= 4; t++) {
      writeGrads(e, store, gradsFor(store, t));
      opt.step(0.05);
    }
    await e.flush();
    const ck = await opt.checkpoint();
    expect(ck.step).toBe(4);
    expect(ck.lastLr).toBe(0.05);
    expect(ck).not.toHaveProperty('lr');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kindling-adamw-'));
    try {
      saveCheckpoint(dir, { config: null, params: await store.readAll(), shapes: new Map(store.entries().map(([n, t]) => [n, t.shape])), optimizer: ck, step: 4 }, { fsync: false });
      expect(readSidecar(dir).optimizer).toMatchObject({ step: 4, lastLr: 0.05 });
      const back = loadCheckpoint(dir);
      const opt2 = new AdamW(store);
      opt2.restore(back.optimizer as never);
      expect(opt2.state()).toEqual(opt.state());
      opt2.destroy();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    opt.destroy();
    store.destroy();
  });

  it('restores a checkpoint written before lastLr existed (its `lr`, the constructor default, is ignored)', async () => {
    const e = await engine();
    const old = loadCheckpoint(path.join(import.meta.dirname, '..', 'io', 'fixtures', 'checkpoint-v1-adamw-default-lr'));
    expect(old.optimizer).toMatchObject({ step: 5, lr: 0.001 });
    const store = ParameterStore.create(e, [...old.params].map(([name, init]) => ({ name, shape: old.shapes.get(name)!, init })));
    const opt = new AdamW(store, { lr: 0.25 });
    opt.restore(old.optimizer as never);
    expect(opt.state()).toEqual({ step: 5, lastLr: null, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 });
    expect(opt.lr).toBe(0.25);
    const { m } = await store.readOptimizerState();
    for (const [n, x] of old.optimizer!.m) expect(m.get(n), n).toEqual(x);
    opt.destroy();
    store.destroy();
  });

  it('loadState validates the step', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(1));
    const opt = new AdamW(store);
    expect(() => opt.loadState({ step: -1 })).toThrow(/step/);
    expect(() => opt.step(Number.NaN)).toThrow(/learning rate/);
    expect(() => new AdamW(store, { beta2: 1 })).toThrow(/beta2/);
    opt.destroy();
    store.destroy();
  });
});

describe('AdamW skipNonFinite', () => {
  const bitsEqual = (a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean =>
    [...a].every(([n, x]) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(b.get(n)!.buffer, b.get(n)!.byteOffset, b.get(n)!.byteLength)));

  for (const [label, bad] of [
    ['a NaN gradient', NaN],
    ['an infinite gradient', Infinity],
    ['a finite gradient whose sum of squares overflows f32', 3e30],
  ] as const) {
    it(`a step with ${label} leaves weights and moments bitwise unchanged; the next finite step updates`, async () => {
      const e = await engine();
      const store = ParameterStore.create(e, decls(31), { maxChunkBytes: 4096 });
      const opt = new AdamW(store, { maxGradNorm: 1, weightDecay: 0.1, skipNonFinite: true });
      await runSteps(e, store, opt, 1, 2);
      const before = { p: await store.readAll(), ...(await store.readOptimizerState()) };
      const g = gradsFor(store, 3);
      g.get('w17x3')![5] = bad;
      writeGrads(e, store, g);
      opt.step(lrAt(3));
      const state = await opt.lastGradState().read();
      expect(Number.isFinite(state[0]!)).toBe(false);
      expect(state[2]).toBe(0);
      const after = { p: await store.readAll(), ...(await store.readOptimizerState()) };
      for (const k of ['p', 'm', 'v'] as const) expect(bitsEqual(before[k], after[k]), k).toBe(true);
      await runSteps(e, store, opt, 4, 4);
      expect((await opt.lastGradState().read())[2]).toBe(1);
      const next = await store.readAll();
      expect(bitsEqual(before.p, next)).toBe(false);
      for (const x of next.values()) expect(x.every(Number.isFinite)).toBe(true);
      opt.destroy();
      store.destroy();
    });
  }

  it('without skipNonFinite a NaN gradient reaches the weights (the flag only gates when asked)', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(32));
    const opt = new AdamW(store, { maxGradNorm: null, weightDecay: 0 });
    const g = gradsFor(store, 1);
    g.get('w17x3')![0] = NaN;
    writeGrads(e, store, g);
    opt.step(1e-3);
    expect((await opt.lastGradState().read())[2]).toBe(0);
    expect(Number.isNaN((await store.readAll()).get('w17x3')![0]!)).toBe(true);
    opt.destroy();
    store.destroy();
  });

  it('the step gate skips a step whose loss is not finite though the gradient is, and accumulates the good losses', async () => {
    const e = await engine();
    const store = ParameterStore.create(e, decls(33));
    const opt = new AdamW(store, { maxGradNorm: 1, weightDecay: 0.1, skipNonFinite: true });
    const acc = e.zeros([8], 'f32', 'acc');
    const loss = e.zeros([1], 'f32', 'loss');
    const losses = [1.5, Infinity, 2.25, NaN];
    let before = await store.readAll();
    for (let t = 1; t <= losses.length; t++) {
      writeGrads(e, store, gradsFor(store, t));
      e.write(loss, new Float32Array([losses[t - 1]!]));
      opt.step(lrAt(t), { loss, acc, step: 10 + t });
      const now = await store.readAll();
      expect(bitsEqual(before, now), `step ${t}`).toBe(!Number.isFinite(losses[t - 1]!));
      before = now;
    }
    const a = await acc.read();
    // Σ good losses, good steps, bad steps, first bad loss, its grad norm, its step
    expect([a[0], a[1], a[2], a[3], a[5]]).toEqual([3.75, 2, 2, Infinity, 12]);
    expect(a[4]).toBeCloseTo(refNorm(gradsFor(store, 2)), 3);
    acc.dispose();
    loss.dispose();
    opt.destroy();
    store.destroy();
  });
});

describe('AdamW groups (a stacked store: per-model norm, clipping and skip) against the float64 formula', () => {
  const G = 3;
  /** Every parameter [G, ...], a multiple of 4 elements per model; one decay-excluded, one frozen. */
  function stackedDecls(seed: number): ParamDecl[] {
    const spec: [string, number[], Partial<ParamDecl>][] = [
      ['w4', [G, 4], {}],
      ['w3x12', [G, 3, 12], {}],
      ['b64', [G, 64], { decay: false }],
      ['frozen8', [G, 8], { trainable: false }],
      ['w1000', [G, 1000], {}],
      ['w2x700', [G, 2, 700], {}],
    ];
    return spec.map(([name, shape, extra], i) => ({ name, shape, init: randArray(shape.reduce((a, b) => a * b, 1), seed + i), ...extra }));
  }
  const part = (x: ArrayLike<number>, g: number) => {
    const n = x.length / G;
    return Float32Array.from({ length: n }, (_, i) => x[g * n + i]!);
  };

  for (const [label, maxChunkBytes, opts] of [
    ['clipping active (the models clip by different factors), one chunk', undefined, { maxGradNorm: 0.5, weightDecay: 0.1 }],
    ['clipping off, several chunks', 20480, { maxGradNorm: null, weightDecay: 0.05 }],
  ] as [string, number | undefined, AdamWOptions][])
    it(label, async () => {
      const e = await engine();
      const ds = stackedDecls(31);
      const store = ParameterStore.create(e, ds, { maxChunkBytes });
      if (maxChunkBytes) expect(store.chunks).toBeGreaterThanOrEqual(2);
      const opt = new AdamW(store, { ...opts, groups: G });
      // Model g's reference: its slice of every parameter, optimised alone.
      const refs = Array.from({ length: G }, (_, g) =>
        refFrom(ds.map((d) => ({ ...d, shape: d.shape.slice(1), init: part(d.init!, g) }))),
      );
      const hp: RefHp = { beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, weightDecay: opt.weightDecay, maxGradNorm: opt.maxGradNorm };
      for (let t = 1; t <= 6; t++) {
        // Model g's gradients scaled by 1 + g, so the models' norms (and clip factors) differ.
        const g0 = gradsFor(store, t);
        const grads = new Map([...g0].map(([n, x]) => [n, x.map((v, i) => v * (1 + Math.floor(i / (x.length / G))))]));
        writeGrads(e, store, grads);
        opt.step(lrAt(t));
        const norms = await opt.lastGradNorm().read();
        for (let g = 0; g < G; g++) {
          const mine = new Map([...grads].map(([n, x]) => [n, part(x, g)]));
          const want = refStep(refs[g]!, mine, lrAt(t), t, hp);
          expect(relErr([norms[g]!], [want]), `norm of model ${g}, step ${t}`).toBeLessThanOrEqual(1e-5);
        }
      }
      const p = await store.readAll();
      const { m, v } = await store.readOptimizerState();
      for (let g = 0; g < G; g++)
        for (const q of refs[g]!) {
          if (!q.trainable) {
            expect(Array.from(part(p.get(q.name)!, g))).toEqual(Array.from(part(ds.find((d) => d.name === q.name)!.init!, g)));
            continue;
          }
          expect(relErr(part(p.get(q.name)!, g), q.p), `${q.name} p, model ${g}`).toBeLessThanOrEqual(1e-5);
          expect(relErr(part(m.get(q.name)!, g), q.m), `${q.name} m, model ${g}`).toBeLessThanOrEqual(1e-5);
          expect(relErr(part(v.get(q.name)!, g), q.v), `${q.name} v, model ${g}`).toBeLessThanOrEqual(1e-5);
        }
      opt.destroy();
      store.destroy();
    });
});
