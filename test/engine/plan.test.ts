/**
 * The kernel plan (engine/plan.ts): what planAs / KINDLING_PLAN_AS changes and what it leaves; the
 * plan's documented rules; and, for each op family, every variant the plan of either kind can
 * choose, run on an engine following that plan against the float64 references on odd shapes (the
 * per-family tests check each kernel in depth; here the plans' own picks: split-K, textures, sg
 * split and rows per lane, reduction chunking, LayerNorm's parameter passes).
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { Engine } from '../../engine/engine.ts';
import { attentionBackward, attentionForward, type AttentionOptions } from '../../engine/ops/attention.ts';
import { crossEntropy } from '../../engine/ops/cross_entropy.ts';
import { layerNorm } from '../../engine/ops/layernorm.ts';
import { encodeMatmul } from '../../engine/ops/matmul.ts';
import { reduceAxisInto, sum } from '../../engine/ops/reduce.ts';
import { describePlan, planFor, type KernelPlan, type PlanKind } from '../../engine/plan.ts';
import * as K from '../../kernels/attention.ts';
import { takesSplitK } from '../../kernels/matmul.ts';
import { poison, randArray, randn, relErr, useEnginesAs } from '../helpers/gpu.ts';
import { refBackward, refForward, type Shape } from '../reference/attention.ts';
import { ceRef } from '../reference/cross_entropy.ts';
import { lnBwdRef, lnRef } from '../reference/layernorm.ts';
import { refMatmul } from '../reference/matmul.ts';
import { refSum } from '../reference/reduce.ts';

/** One engine per plan kind for this file. */
const engine = useEnginesAs();
const KINDS: PlanKind[] = ['software', 'hardware'];

const LAVAPIPE = { software: true, subgroupMinSize: 8, subgroupMaxSize: 8 };
const GPU = { software: false, subgroupMinSize: 32, subgroupMaxSize: 32 };
const LIMITS = { maxStorageBufferBindingSize: 2 ** 31 - 4 };
const SG = ['subgroups'];

describe('plan kind and adapter kind', () => {
  it('KINDLING_PLAN_AS=hardware on this adapter gives plan.kind hardware and leaves info.software as the adapter is', async () => {
    const plain = await engine('software');
    const old = process.env.KINDLING_PLAN_AS;
    process.env.KINDLING_PLAN_AS = 'hardware';
    let e: Engine;
    try {
      e = await Engine.create();
    } finally {
      if (old === undefined) delete process.env.KINDLING_PLAN_AS;
      else process.env.KINDLING_PLAN_AS = old;
    }
    try {
      expect(e.plan.kind).toBe('hardware');
      expect(e.device.info.software).toBe(plain.device.info.software);
      expect(e.plan.adapterSoftware).toBe(e.device.info.software);
      // Waits follow the adapter, not the plan.
      expect(e.plan.wait.spin).toBe(!e.device.info.software);
      expect(e.profiler.describePlan()).toMatch(/^kernel plan: hardware/);
      if (e.device.info.software) expect(e.device.describe()).toMatch(/\[software, \w+, hardware plan\]$/);
    } finally {
      e.destroy();
    }
    await expect(Engine.create({ planAs: 'gpu' as PlanKind })).rejects.toThrow(/must be "hardware" or "software"/);
  });

  it('without planAs the plan is the adapter kind', async () => {
    const adapterSw = (await engine('software')).device.info.software;
    expect(planFor({ ...LAVAPIPE, software: adapterSw }, LIMITS, SG).kind).toBe(adapterSw ? 'software' : 'hardware');
    expect(planFor(LAVAPIPE, LIMITS, SG).kind).toBe('software');
    expect(planFor(GPU, LIMITS, SG).kind).toBe('hardware');
    expect(planFor(GPU, LIMITS, SG, { planAs: 'software' }).adapterSoftware).toBe(false);
  });
});

/**
 * A plan switch's variable: `=1` turns it on over the software plan's default, `=0` off over the
 * hardware plan's, the device option wins over the variable, and another value is refused by name.
 */
async function checkPlanSwitch(variable: string, option: 'geluInProducts' | 'blockAttention', read: (e: Engine) => boolean): Promise<void> {
  const old = process.env[variable];
  const made: Engine[] = [];
  try {
    process.env[variable] = '1';
    made.push(await Engine.create({ planAs: 'software' }));
    expect(read(made[0]!)).toBe(true);
    process.env[variable] = '0';
    made.push(await Engine.create({ planAs: 'hardware' }));
    expect(read(made[1]!)).toBe(false);
    made.push(await Engine.create({ planAs: 'hardware', [option]: true }));
    expect(read(made[2]!)).toBe(true);
    process.env[variable] = 'yes';
    await expect(Engine.create()).rejects.toThrow(new RegExp(`${variable} must be "1" or "0", got "yes"`));
  } finally {
    if (old === undefined) delete process.env[variable];
    else process.env[variable] = old;
    for (const e of made) e.destroy();
  }
}

describe('the MLP GELU choice', () => {
  it('geluInProducts follows the plan kind unless given; KINDLING_GELU_IN_PRODUCTS sets it and refuses other values', async () => {
    expect(planFor(LAVAPIPE, LIMITS, SG).matmul.geluInProducts).toBe(false);
    expect(planFor(GPU, LIMITS, SG).matmul.geluInProducts).toBe(true);
    expect(planFor(LAVAPIPE, LIMITS, SG, { planAs: 'hardware' }).matmul.geluInProducts).toBe(true);
    expect(planFor(GPU, LIMITS, SG, { geluInProducts: false }).matmul.geluInProducts).toBe(false);
    expect(planFor(LAVAPIPE, LIMITS, SG, { geluInProducts: true }).matmul.geluInProducts).toBe(true);
    await checkPlanSwitch('KINDLING_GELU_IN_PRODUCTS', 'geluInProducts', (e) => e.plan.matmul.geluInProducts);
  });
});

describe('the attention block choice', () => {
  const STORAGE = (bytes: number) => ({ ...LIMITS, maxComputeWorkgroupStorageSize: bytes });
  it('block follows the plan kind unless given, at hd % 64 = 0 without dropout, with tiles that fit; KINDLING_BLOCK_ATTENTION sets it', async () => {
    const o = { fast: true, dropout: false };
    const gpu = planFor(GPU, STORAGE(49152), SG);
    expect(gpu.attention.block).toBe(true);
    for (const pass of ['fwd', 'bwd'] as const) {
      expect(gpu.attention.choose(64, pass, o)).toBe('block');
      expect(gpu.attention.choose(128, pass, o)).toBe('block');
      expect(gpu.attention.choose(64, pass, { fast: true, dropout: true })).toBe('tiled');
      expect(gpu.attention.choose(32, pass, o)).toBe('tiled');
      expect(planFor(GPU, STORAGE(49152), SG, { blockAttention: false }).attention.choose(64, pass, o)).toBe(pass === 'fwd' ? 'tiled' : 'sg');
      expect(planFor(LAVAPIPE, STORAGE(32768), SG).attention.choose(64, pass, o)).toBe('sg');
      expect(planFor(LAVAPIPE, STORAGE(32768), SG, { blockAttention: true }).attention.choose(64, pass, o)).toBe('block');
    }
    // The largest tiles of BLOCK_TILES that fit: the H200's 48 KiB, lavapipe's 32 KiB, WebGPU's default 16 KiB.
    const tiles = (p: KernelPlan, hd: number) => (['fwd', 'dq', 'dkv'] as const).map((k) => p.attention.blockTiles(k, hd));
    expect(tiles(gpu, 64)).toEqual([
      { hd: 64, rows: 64, cols: 32 },
      { hd: 64, rows: 64, cols: 16 },
      { hd: 64, rows: 32, cols: 32 },
    ]);
    expect(tiles(planFor(GPU, STORAGE(32768), SG), 64)).toEqual([
      { hd: 64, rows: 32, cols: 32 },
      { hd: 64, rows: 32, cols: 16 },
      { hd: 64, rows: 32, cols: 16 },
    ]);
    expect(tiles(planFor(GPU, LIMITS, SG), 64)).toEqual([
      { hd: 64, rows: 16, cols: 16 },
      { hd: 64, rows: 8, cols: 16 },
      { hd: 64, rows: 8, cols: 16 },
    ]);
    for (const [p, hd] of [
      [gpu, 64],
      [gpu, 128],
      [planFor(GPU, STORAGE(32768), SG), 128],
    ] as const)
      for (const [k, t] of tiles(p, hd).entries()) expect(K.blockStorageBytes((['fwd', 'dq', 'dkv'] as const)[k], t!)).toBeLessThanOrEqual(p === gpu ? 49152 : 32768);
    // 16 KiB holds no hd-128 backward tile: not block there.
    expect(planFor(GPU, LIMITS, SG).attention.choose(128, 'bwd', o)).toBe('sg');
    expect(gpu.attention.blockTiles('fwd', 32)).toBeNull();

    await checkPlanSwitch('KINDLING_BLOCK_ATTENTION', 'blockAttention', (e) => e.plan.attention.block);
  });
});

describe('plan rules (pure)', () => {
  const plans: [string, KernelPlan][] = [
    ['lavapipe', planFor(LAVAPIPE, LIMITS, SG)],
    ['lavapipe, no textures', planFor(LAVAPIPE, LIMITS, SG, { textures: false })],
    ['lavapipe, no subgroups', planFor(LAVAPIPE, LIMITS, [])],
    ['lavapipe as hardware', planFor(LAVAPIPE, LIMITS, SG, { planAs: 'hardware' })],
    ['GPU', planFor(GPU, LIMITS, SG)],
    ['GPU as software', planFor(GPU, LIMITS, SG, { planAs: 'software' })],
  ];
  const dims = [1, 3, 16, 17, 48, 64, 65, 127, 256, 512, 768, 1024, 2048, 4096, 63000];

  for (const [name, p] of plans)
    it(`${name}: choose returns exactly the listed variants; the documented rules hold`, () => {
      const seen = new Set<string>();
      for (const M of dims)
        for (const N of dims)
          for (const K of dims)
            for (const batch of [1, 12])
              for (const tB of [false, true]) {
                const v = p.matmul.choose(M, N, K, batch, tB);
                seen.add(v);
                expect(p.matmul.variants, `${M}x${N}x${K} b${batch}`).toContain(v);
                if (M * N * K * batch < 32768) expect(v).toBe('naive');
                const s = p.matmul.splitK(v, M, N, K, batch);
                // Split-K: hardware plan, the shared kernels (single products or batches), K ≥ 1024, chunks ≥ 256 k's.
                if (!p.matmul.splitsK || !takesSplitK(v) || K < 1024) expect(s).toBe(1);
                expect(s).toBeGreaterThanOrEqual(1);
                expect(s).toBeLessThanOrEqual(Math.max(1, Math.floor(K / 256)));
                if (v === 'shared128') expect(s).toBeLessThanOrEqual(8);
              }
      expect([...seen].sort()).toEqual([...p.matmul.variants].sort());
      // Textures only on the software plan; the software shape of `shared` only there.
      if (p.kind === 'hardware') expect(p.matmul.textures || p.attention.textures).toBe(false);
      expect(p.matmul.softwareShared).toBe(p.kind === 'software');

      const att = new Set<string>();
      for (const hd of [4, 6, 8, 16, 32, 64, 128])
        for (const pass of ['fwd', 'bwd'] as const)
          for (const fast of [false, true])
            for (const dropout of [false, true]) {
              const v = p.attention.choose(hd, pass, { fast: fast && hd % 4 === 0, dropout });
              att.add(v);
              expect(p.attention.runnable).toContain(v);
              if (!(fast && hd % 4 === 0)) expect(v).toBe('ref');
              if (p.kind === 'hardware' && pass === 'fwd') expect(v).not.toBe('sg');
            }
      expect([...att].sort()).toEqual([...p.attention.variants].sort());
      for (const hd of [4, 8, 32, 64, 128]) {
        const sg = p.attention.subgroupSize || 8;
        const c = p.attention.sgSplit(hd, sg);
        expect(c & (c - 1)).toBe(0);
        expect(c).toBeLessThanOrEqual(sg);
        // A lane holds at most sgVec4PerLane vec4s when the split can go that far.
        if ((hd / 4) % (2 * c) === 0 && 2 * c <= sg) expect(hd / 4 / c).toBeLessThanOrEqual(p.attention.sgVec4PerLane);
      }

      const red = new Set<string>();
      for (const o of dims)
        for (const n of dims)
          for (const mc of [1, 16, 32, 1024]) {
            const { nChunks, chunkLen } = p.reduce.chunks(o, n, mc);
            expect(nChunks * chunkLen).toBeGreaterThanOrEqual(n);
            expect((nChunks - 1) * chunkLen).toBeLessThan(Math.max(1, n));
            if (p.reduce.sqrtCap) expect(nChunks).toBeLessThanOrEqual(Math.max(1, Math.ceil(Math.sqrt(n))));
            red.add(p.reduce.choose(1, n));
          }
      expect([...red].sort()).toEqual([...p.reduce.variants].sort());
      for (const R of dims) {
        if (R <= 64) expect(p.matmul.colsumOnePass(R)).toBe(true);
        expect(p.matmul.colsumChunkRows(R)).toBeGreaterThanOrEqual(64);
      }
      // LayerNorm: thread rows on the software plan; on the hardware one for narrow rows and many.
      for (const d of dims)
        for (const rows of dims) {
          const v = p.layernorm.choose(d, rows);
          expect(v, `layernorm ${rows}x${d}`).toBe(p.kind === 'software' || (d <= 64 && rows >= 16384) ? 'thread' : 'wg');
        }
      expect(describePlan(p)).toContain(`kernel plan: ${p.kind}`);
    });
});

describe('every variant a plan can choose, on an engine following it, against float64', () => {
  for (const kind of KINDS) {
    it(`${kind} plan: matmul (each variant, nn/nt/tn, odd shapes, texture-sized and split-K shapes; bias + accumulate)`, async () => {
      const e = await engine(kind);
      let seed = 7000;
      // Odd shapes; N, K multiples of 64 (operands through textures on the software plan); a long K
      // (split-K on the hardware plan) in the weight gradient's form. One form each: lavapipe
      // compiles every kernel for seconds (the forms × shapes are in matmul.test.ts).
      const cases: [number, number, number, boolean, boolean][] = [
        [3, 17, 33, false, false],
        [33, 65, 17, false, true],
        [33, 128, 128, false, false],
        [17, 33, 1030, true, false],
      ];
      for (const variant of [...e.plan.matmul.variants, undefined])
        for (const [M, N, K, tA, tB] of cases) {
            const a = randArray(M * K, seed++);
            const b = randArray(K * N, seed++);
            const bias = randArray(N, seed++);
            const c0 = randArray(M * N, seed++);
            const acc = seed % 2 === 0;
            const ta = e.tensor(a, tA ? [K, M] : [M, K]);
            const tb = e.tensor(b, tB ? [N, K] : [K, N]);
            const c = acc ? e.tensor(c0, [M, N]) : e.empty([M, N]);
            if (!acc) poison(e, c);
            encodeMatmul(e, ta, tb, c, { M, N, K, transA: tA, transB: tB, accumulate: acc, ...(variant ? { variant } : {}) }, e.tensor(bias));
            const want = refMatmul(a, b, M, N, K, tA, tB).map((v, i) => v + bias[i % N]! + (acc ? c0[i]! : 0));
            expect(relErr(await c.read(), want), `${variant ?? 'auto'} ${tA ? 't' : 'n'}${tB ? 't' : 'n'} ${M}x${N}x${K}`).toBeLessThanOrEqual(1e-4);
        }
    });

    it(`${kind} plan: attention (each variant with the plan's sg split, rows per lane and qkv source; odd T, padding)`, async () => {
      const e = await engine(kind);
      const cases: Shape[] = [
        { B: 2, T: 17, H: 2, hd: 4 },
        { B: 1, T: 37, H: 1, hd: 8 },
      ];
      // The sg kernels' split is the plan's from hd 64 (2 lanes on the software plan, 4 on the hardware one).
      if (e.plan.attention.variants.includes('sg')) cases.push({ B: 1, T: 21, H: 2, hd: 64 });
      let seed = 900;
      for (const variant of [...e.plan.attention.variants, 'auto'] as const)
        for (const s of cases) {
          if ((variant === 'tiled' || variant === 'row' || variant === 'auto') && s.hd === 64 && kind === 'software') continue;
          if ((variant === 'tiled' || variant === 'row') && s.hd === 64) continue; // compile time on lavapipe; tiled at hd 64 runs in test/model/plans.test.ts
          if (variant === 'block' && s.hd % 64 !== 0) continue; // block runs at hd % 64 = 0 only
          const d = s.H * s.hd;
          const qkvData = randArray(s.B * s.T * 3 * d, seed++, -2, 2);
          const dyData = randArray(s.B * s.T * d, seed++, -1, 1);
          const maskData = Float32Array.from({ length: s.B * s.T }, (_, i) => (i % 5 === 3 ? 0 : 1));
          const qkv = e.tensor(qkvData, [s.B, s.T, 3 * d]);
          const dy = e.tensor(dyData, [s.B, s.T, d]);
          const o: AttentionOptions = { variant, keyPadMask: e.tensor(maskData, [s.B, s.T]) };
          const { y, lse } = attentionForward(qkv, s.H, o);
          const dqkv = attentionBackward(qkv, y, lse, dy, s.H, o);
          const what = `${variant} ${JSON.stringify(s)}`;
          expect(relErr(await y.read(), refForward(qkvData, s, maskData).y), what).toBeLessThanOrEqual(1e-4);
          expect(relErr(await dqkv.read(), refBackward(qkvData, dyData, s, maskData)), what).toBeLessThanOrEqual(1e-4);
        }
    });

    it(`${kind} plan: reductions (each variant, the plan's chunks), LayerNorm's parameter passes, cross-entropy rows`, async () => {
      const e = await engine(kind);
      // sum over odd shapes with the plan's own variant and chunks, then each listed variant forced.
      for (const [shape, axis] of [
        [[1, 2049, 1], 1],
        [[3, 5000], 1],
        [[5000, 3], 0],
        [[7, 4097, 5], 1],
      ] as [number[], number][]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const xs = randn(n, 50 + n);
        const x = e.tensor(xs, shape);
        expect(relErr(await sum(x, axis).read(), refSum(xs, shape, axis)), `sum [${shape}] axis ${axis}`).toBeLessThanOrEqual(1e-5);
      }
      const xs = randn(3 * 4099, 61);
      const x = e.tensor(xs, [3, 4099]);
      for (const variant of e.plan.reduce.variants) {
        const out = e.empty([3]);
        poison(e, out);
        reduceAxisInto(e, x, out, 3, 4099, 1, { variant });
        expect(relErr(await out.read(), refSum(xs, [3, 4099], 1)), `reduce ${variant}`).toBeLessThanOrEqual(1e-5);
      }
      // LayerNorm: one pass for dγ, dβ (software plan up to 4096 rows) and chunks beyond; the
      // hardware plan's thread rows (d ≤ 64, rows ≥ 16384) at 16400 × 16.
      for (const [rows, d] of [
        [100, 17],
        [5003, 12],
        [16400, 16],
      ]) {
        const xv = randn(rows * d, 70 + rows);
        const gv = randn(d, 71).map((v) => 1 + 0.3 * v);
        const bv = randn(d, 72, 0.1);
        const gy = randn(rows * d, 73);
        e.startGrad();
        const xt = e.tensor(xv, [rows, d], { requiresGrad: true });
        const g = e.tensor(gv, [d], { requiresGrad: true });
        const b = e.tensor(bv, [d], { requiresGrad: true });
        const y = layerNorm(xt, g, b);
        expect(relErr(await y.read(), lnRef(xv, rows, d, gv, bv).y)).toBeLessThan(1e-5);
        backward(y, e.tensor(gy, [rows, d]));
        const ref = lnBwdRef(xv, rows, d, gv, gy);
        expect(relErr(await xt.grad!.read(), ref.dx), `layernorm dx ${rows}x${d}`).toBeLessThan(1e-5);
        expect(relErr(await g.grad!.read(), ref.dg), `layernorm dγ ${rows}x${d}`).toBeLessThan(1e-5);
        expect(relErr(await b.grad!.read(), ref.db), `layernorm dβ ${rows}x${d}`).toBeLessThan(1e-5);
      }
      // Cross-entropy with the plan's row kernel (and the hardware plan's thread rows: V ≤ 64, N ≥ 16384).
      for (const [N, V] of [
        [37, 101],
        [16400, 7],
      ]) {
        const logits = randn(N * V, 80 + N, 2);
        const targets = Int32Array.from({ length: N }, (_, i) => (i * 7) % V);
        const mask = Float32Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 0 : 1));
        const loss = crossEntropy(e.tensor(logits, [N, V]), e.tensor(targets, [N], { dtype: 'i32' }), e.tensor(mask, [N]));
        expect(relErr(await loss.read(), [ceRef(logits, targets, mask, N, V).loss]), `cross-entropy ${N}x${V} (${e.plan.rows.choose(V, N)})`).toBeLessThan(1e-5);
      }
    });
  }
});
