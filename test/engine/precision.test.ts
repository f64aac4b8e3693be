/**
 * Mixed precision (engine/precision.ts, kernels/precision.ts, the half-operand matmul variants):
 * the CPU half conversions against an arithmetic reference; the device cast (values, clamping, the
 * overflow flags); every variant and form of a product with f16 operands against float64 of the
 * halves, with bias, accumulate, split-K and the fused column sums; `linear` and `matmul` forward
 * and backward in precision f16 against float64 of the half operands; the dynamic loss scale
 * (unscale exact, skip on overflow bitwise, backoff, growth, cap) against a plain AdamW step; the
 * errors where the adapter lacks shader-f16. Both plans (the hardware plan's shared variants run
 * on lavapipe through KINDLING_PLAN_AS).
 */
import { describe, expect, it } from 'vitest';
import { backward, startGrad } from '../../engine/autograd.ts';
import { Engine } from '../../engine/engine.ts';
import { bf16BitsToFloat, floatToBf16Bits, floatToHalfBits, halfBitsToFloat } from '../../engine/half.ts';
import { encodeMatmul, linear, matmul } from '../../engine/ops/matmul.ts';
import { AdamW } from '../../engine/optim.ts';
import { ParameterStore, type ParamDecl } from '../../engine/params.ts';
import { castHalf, LossScaler, setPrecision } from '../../engine/precision.ts';
import { type HalfType, Tensor } from '../../engine/tensor.ts';
import { matmulKernel } from '../../kernels/matmul.ts';
import { POISON, poison, randArray, randn, relErr, useEnginesAs } from '../helpers/gpu.ts';
import { refMatmul } from '../reference/matmul.ts';

const engineAs = useEnginesAs();
const TOL = 1e-5;

/**
 * The value nearest x with `bits` fraction bits, exponents down to `minExp` (below: subnormal
 * spacing) and `max` the largest finite (beyond: ±Infinity), ties to even — by arithmetic on
 * float64, an independent reference of engine/half.ts and the device casts.
 */
function refRound(x: number, bits: number, minExp: number, max: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const q = 2 ** (Math.max(e, minExp) - bits); // spacing at a's binade
  const r = a / q;
  let n = Math.floor(r);
  const frac = r - n;
  if (frac > 0.5 || (frac === 0.5 && n % 2 === 1)) n++;
  const v = n * q;
  return Math.sign(x) * (v > max ? Infinity : v);
}

/** The nearest IEEE half (10 fraction bits, normal down to 2⁻¹⁴, largest 65504). */
const refHalf = (x: number): number => refRound(x, 10, -14, 65504);
/** The nearest bfloat16 (7 fraction bits, f32's exponents, largest (2 − 2⁻⁷)·2¹²⁷). */
const refBf16 = (x: number): number => refRound(x, 7, -126, (2 - 2 ** -7) * 2 ** 127);

/** Spacing of halves around x (its binade's). */
function halfSpacing(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -14) return 2 ** -24;
  return 2 ** (Math.floor(Math.log2(a)) - 10);
}

async function f16Engine(kind: 'software' | 'hardware'): Promise<Engine> {
  const e = await engineAs(kind);
  setPrecision(e, 'f16');
  return e;
}

async function flags(e: Engine): Promise<number[]> {
  return [...(await new Tensor(e, [2], 'u32', e.halfFlags!, 'arena').read())];
}

describe('half conversions on the CPU', () => {
  it('round to the nearest half (ties to even) like the arithmetic reference, across every binade, subnormals, ties and overflow', () => {
    const xs: number[] = [0, -0, 1, -1, 65504, -65504, 65519.99, 65520, 1e9, -1e9, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 2 ** -14, 2 ** -14 - 2 ** -25];
    // Ties: halfway between two halves rounds to the even one.
    for (const base of [1, 2 ** -14, 1024, 2 ** -20]) {
      const q = halfSpacing(base);
      for (let k = 0; k < 6; k++) xs.push(base + (k + 0.5) * q, -(base + (k + 0.5) * q));
    }
    const r = randArray(4000, 11);
    r.forEach((u, i) => xs.push(Math.fround(u * 2 ** ((i % 44) - 27))));
    for (const x0 of xs) {
      const x = Math.fround(x0);
      const got = halfBitsToFloat(floatToHalfBits(x));
      expect(Object.is(got, refHalf(x)) || got === refHalf(x), `x = ${x}`).toBe(true);
    }
    expect(Number.isNaN(halfBitsToFloat(floatToHalfBits(NaN)))).toBe(true);
    expect(halfBitsToFloat(floatToHalfBits(-Infinity))).toBe(-Infinity);
  });

  it('bfloat16: round to nearest even like the arithmetic reference, across f32 binades, subnormals, ties and overflow', () => {
    const xs: number[] = [0, -0, 1, -1, 3.3895313892515355e38, 3.4e38, -3.4e38, 2 ** -133, 2 ** -126, 1e-40, -1e-45];
    for (const base of [1, 2 ** -126, 2 ** 100, 2 ** -130])
      for (let k = 0; k < 6; k++) {
        const q = 2 ** (Math.max(Math.floor(Math.log2(base)), -126) - 7);
        xs.push(base + (k + 0.5) * q, -(base + (k + 0.5) * q));
      }
    const r = randArray(4000, 12);
    r.forEach((u, i) => xs.push(u * 2 ** ((i % 250) - 130)));
    for (const x0 of xs) {
      const x = Math.fround(x0);
      expect(bf16BitsToFloat(floatToBf16Bits(x)), `x = ${x}`).toBe(refBf16(x));
    }
    expect(Number.isNaN(bf16BitsToFloat(floatToBf16Bits(NaN)))).toBe(true);
    for (let h = 0; h < 0x10000; h++) if ((h & 0x7f80) !== 0x7f80 || (h & 0x7f) === 0) expect(floatToBf16Bits(bf16BitsToFloat(h))).toBe(h);
  });

  it('every finite half survives a round trip through its value', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaNs
      expect(floatToHalfBits(halfBitsToFloat(h))).toBe(h);
    }
  });

  it('f16 tensors upload rounded and read back as their values; odd lengths and slices work', async () => {
    const e = await f16Engine('software');
    const x = randArray(37, 5, -3, 3);
    const t = e.tensor(x, [37], { dtype: 'f16' });
    expect(t.byteLength).toBe(74);
    const back = await t.read();
    expect(back).toBeInstanceOf(Float32Array);
    expect([...back]).toEqual([...x].map((v) => refHalf(v)));
  });
});

describe('castHalf on the device', () => {
  it('gives one of the two halves around each value, and flags and clamps only what is beyond ±65504 (gradient and activation slots)', async () => {
    const e = await f16Engine('software');
    for (const n of [4000, 4001]) {
      // vec4 and scalar kernels
      const x = Float32Array.from(randn(n, n, 1), (v, i) => Math.fround(v * 2 ** ((i % 37) - 24)));
      x[3] = 65504;
      x[5] = -65504;
      e.clear(e.halfFlags!);
      const h = await castHalf(e.tensor(x), 'gradient').read();
      for (let i = 0; i < n; i++) {
        const q = halfSpacing(x[i]!);
        expect(Math.abs(h[i]! - x[i]!), `x[${i}] = ${x[i]}`).toBeLessThan(q);
        expect(halfBitsToFloat(floatToHalfBits(h[i]!))).toBe(h[i]);
      }
      expect(await flags(e)).toEqual([0, 0]);
      const big = Float32Array.from([1, -70000, 3, Infinity, 65536, 0.5, -Infinity, 2]);
      const hb = await castHalf(e.tensor(big.slice(0, n === 4000 ? 8 : 7)), 'gradient').read();
      expect([...hb].slice(0, 7)).toEqual([1, -65504, 3, 65504, 65504, 0.5, -65504]);
      expect(await flags(e)).toEqual([1, 0]);
      e.clear(e.halfFlags!);
      await castHalf(e.tensor(Float32Array.from([0, 1e6, 0, 0])), 'activation').read();
      expect(await flags(e)).toEqual([0, 1]);
      e.clear(e.halfFlags!);
      await castHalf(e.tensor(Float32Array.from([NaN, 0, 0])), 'gradient').read();
      expect((await flags(e))[0]).toBe(1);
    }
  });
});

describe('castHalf to bfloat16 on the device', () => {
  it('rounds every value to nearest even exactly as the reference, packs pairs (odd counts too), and flags only NaN / ±Inf / overflow', async () => {
    const e = await engineAs('software');
    setPrecision(e, 'bf16');
    for (const n of [4000, 4001]) {
      const x = Float32Array.from(randn(n, n + 7, 1), (v, i) => Math.fround(v * 2 ** ((i % 200) - 100)));
      x[1] = 1 + 2 ** -8; // a tie: to 1 (even)
      x[2] = 1 + 3 * 2 ** -8; // a tie: up to 1 + 2⁻⁶
      e.clear(e.halfFlags!);
      const t = castHalf(e.tensor(x), 'gradient');
      expect(t.dtype).toBe('bf16');
      const h = await t.read();
      for (let i = 0; i < n; i++) expect(h[i], `x[${i}] = ${x[i]}`).toBe(refBf16(x[i]!));
      expect(await flags(e)).toEqual([0, 0]);
      const big = Float32Array.from([1, 3.4e38, 2, Infinity, 0.5, -Infinity, NaN, 4]);
      const hb = await castHalf(e.tensor(big.slice(0, n === 4000 ? 8 : 7)), 'gradient').read();
      expect([...hb].slice(0, 6)).toEqual([1, Infinity, 2, Infinity, 0.5, -Infinity]);
      expect(Number.isNaN(hb[6])).toBe(true);
      expect(await flags(e)).toEqual([1, 0]);
    }
    setPrecision(e, 'f32');
  });
});

describe('matmul with half-precision operands', () => {
  /** C (+)= op(A)·op(B) (+ bias) with the chosen operands stored as f16, against float64 of the halves. */
  async function check(
    e: Engine,
    p: { M: number; N: number; K: number; tA: boolean; tB: boolean; variant?: string; halfA?: HalfType; halfB?: HalfType; bias?: boolean; accumulate?: boolean; splitK?: number; colsum?: boolean },
    seed: number,
  ): Promise<void> {
    const { M, N, K, tA, tB } = p;
    const a = randArray(M * K, seed);
    const b = randArray(K * N, seed + 1);
    const ta = e.tensor(a, tA ? [K, M] : [M, K], p.halfA ? { dtype: p.halfA } : {});
    const tb = e.tensor(b, tB ? [N, K] : [K, N], p.halfB ? { dtype: p.halfB } : {});
    const ah = await ta.read();
    const bh = await tb.read();
    const bias = randArray(N, seed + 2);
    const c0 = randArray(M * N, seed + 3);
    const tc = p.accumulate ? e.tensor(c0, [M, N]) : e.empty([M, N]);
    if (!p.accumulate) poison(e, tc);
    const cs = p.colsum ? e.tensor(randArray(N, seed + 4), [N]) : null;
    const cs0 = cs ? await cs.read() : null;
    encodeMatmul(
      e,
      ta,
      tb,
      tc,
      {
        M,
        N,
        K,
        transA: tA,
        transB: tB,
        ...(p.variant ? { variant: p.variant } : {}),
        ...(p.accumulate ? { accumulate: true } : {}),
        ...(p.splitK ? { splitK: p.splitK } : {}),
        ...(cs ? { colsumB: { out: cs, accumulate: true } } : {}),
      },
      p.bias ? e.tensor(bias) : null,
    );
    const ref = refMatmul(ah, bh, M, N, K, tA, tB);
    for (let i = 0; i < M * N; i++) ref[i] = ref[i]! + (p.bias ? bias[i % N]! : 0) + (p.accumulate ? c0[i]! : 0);
    const got = await tc.read();
    expect(got.some((v) => v === POISON)).toBe(false);
    expect(relErr(got, ref), JSON.stringify(p)).toBeLessThan(TOL);
    if (cs) {
      const refCs = Float64Array.from(cs0!, (v, n) => {
        let s = v;
        for (let k = 0; k < K; k++) s += bh[k * N + n]!;
        return s;
      });
      expect(relErr(await cs.read(), refCs), `colsum ${JSON.stringify(p)}`).toBeLessThan(TOL);
    }
  }

  const forms: [boolean, boolean][] = [
    [false, false],
    [true, false],
    [false, true],
  ];
  /** Which operands are half, in which type: both f16, both bf16, and each alone (f16 A, bf16 B). */
  const halves: [HalfType | undefined, HalfType | undefined][] = [
    ['f16', 'f16'],
    ['bf16', 'bf16'],
    ['f16', undefined],
    [undefined, 'bf16'],
  ];

  it('hardware plan: naive, shared and shared128 × NN/TN/NT × f16 / bf16 operands, on odd shapes and (shared128, vec4 half loads) aligned ones', async () => {
    const e = await f16Engine('hardware');
    let seed = 100;
    // Each combination is a kernel of its own, which lavapipe compiles for seconds on a cold cache, so:
    // naive and shared: every form with both operands half in each type, and one operand alone (NN);
    // shared128: every form with vec4 half loads (aligned shape) in each type, scalar loads (odd shape) NN.
    for (const variant of ['naive', 'shared', 'shared128'])
      for (const [tA, tB] of forms)
        for (const [halfA, halfB] of halves) {
          const alone = halfA !== halfB;
          if (alone && (tA || tB || variant === 'shared128')) continue;
          if (variant !== 'shared128' || (!tA && !tB && !alone)) await check(e, { M: 37, N: 45, K: 29, tA, tB, variant, halfA, halfB }, (seed += 5));
          if (variant === 'shared128') await check(e, { M: 132, N: 68, K: 52, tA, tB, variant, halfA, halfB }, (seed += 5));
        }
  });

  it('hardware plan: bias, accumulate, split-K and the fused column sums of a half B', async () => {
    const e = await f16Engine('hardware');
    let seed = 300;
    for (const [h, variant, tA, splitK] of [
      ['f16', 'shared', false, 1],
      ['f16', 'shared128', true, 3],
      ['bf16', 'shared', true, 3],
      ['bf16', 'shared128', false, 1],
    ] as const)
      await check(e, { M: 70, N: 72, K: 96, tA, tB: false, variant, halfA: h, halfB: h, bias: true, accumulate: true, splitK, colsum: true }, (seed += 6));
    expect(matmulKernel({ variant: 'shared128', transA: true, transB: false, vecA: true, vecB: true, vecC: true, halfA: 'f16', halfB: 'f16' }).name).toBe('matmul.shared128.tn[a4,ah,b4,bh,c4]');
    expect(matmulKernel({ variant: 'shared', transA: false, transB: false, vecA: false, vecB: false, vecC: false, halfA: 'bf16', halfB: 'bf16' }).name).toBe('matmul.shared.nn[abf,bbf]');
    expect(matmulKernel({ variant: 'shared', transA: false, transB: false, vecA: false, vecB: false, vecC: false, halfA: 'bf16', halfB: 'bf16' }).requires).toBeUndefined();
  });

  it('software plan: the software shared kernel reads halves, and any product with a half operand runs on it', async () => {
    const e = await f16Engine('software');
    let seed = 500;
    for (const [tA, tB] of forms)
      for (const h of ['f16', 'bf16'] as const) {
        await check(e, { M: 37, N: 45, K: 29, tA, tB, halfA: h, halfB: h, bias: true }, (seed += 5));
        await check(e, { M: 9, N: 16, K: 64, tA, tB, variant: 'shared', halfB: h, accumulate: true }, (seed += 5));
      }
    const h = e.tensor(randArray(64, 1), [8, 8], { dtype: 'f16' });
    expect(() => encodeMatmul(e, h, h, e.empty([8, 8]), { M: 8, N: 8, K: 8, variant: 'reg4x4' })).toThrow(/half-precision operands need one of naive, shared, shared128; got reg4x4/);
  });
});

describe('linear and matmul in precision f16', () => {
  /** float64 Σ_rows of op products for the reference gradients. */
  function mm(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, tA: boolean, tB: boolean): Float64Array {
    return refMatmul(a, b, M, N, K, tA, tB);
  }

  for (const [kind, type] of [
    ['software', 'f16'],
    ['hardware', 'f16'],
    ['software', 'bf16'],
    ['hardware', 'bf16'],
  ] as const)
    it(`${kind} plan, ${type}: forward and every gradient equal float64 of the half operands (x, W, dY), the bias's from the half dY`, async () => {
      const e = await engineAs(kind);
      setPrecision(e, type);
      e.clear(e.halfFlags!);
      const [R, inF, outF] = [18, 12, 20];
      const x = e.tensor(randArray(R * inF, 1), [2, 9, inF], { requiresGrad: true });
      const w = e.tensor(randArray(inF * outF, 2), [inF, outF], { requiresGrad: true });
      const b = e.tensor(randArray(outF, 3), [outF], { requiresGrad: true });
      const g = e.tensor(randArray(R * outF, 4), [2, 9, outF]);
      const [xh, wh, gh] = await Promise.all([castHalf(x).read(), castHalf(w).read(), castHalf(g).read()]);
      const bv = await b.read();
      startGrad(e);
      const y = linear(x, w, b);
      backward(y, g);
      const refY = mm(xh, wh, R, outF, inF, false, false).map((v, i) => v + bv[i % outF]!);
      expect(relErr(await y.read(), refY)).toBeLessThan(TOL);
      expect(relErr(await x.grad!.read(), mm(gh, wh, R, inF, outF, false, true))).toBeLessThan(TOL);
      expect(relErr(await w.grad!.read(), mm(xh, gh, inF, outF, R, true, false))).toBeLessThan(TOL);
      const refDb = new Float64Array(outF);
      for (let i = 0; i < R * outF; i++) refDb[i % outF] += gh[i]!;
      expect(relErr(await b.grad!.read(), refDb)).toBeLessThan(TOL);
      // A frozen weight: the backward still gives dx (and db from the f32 dY) while x's half copy is freed at once.
      const x2 = e.tensor(randArray(R * inF, 8), [R, inF], { requiresGrad: true });
      const wFrozen = e.tensor(await w.read(), [inF, outF]);
      const b2 = e.tensor(bv, [outF], { requiresGrad: true });
      startGrad(e);
      backward(linear(x2, wFrozen, b2), g.reshape([R, outF]));
      expect(relErr(await x2.grad!.read(), mm(gh, wh, R, inF, outF, false, true))).toBeLessThan(TOL);
      const gv = await g.read();
      const refDb2 = new Float64Array(outF);
      for (let i = 0; i < R * outF; i++) refDb2[i % outF] += gv[i]!;
      expect(relErr(await b2.grad!.read(), refDb2)).toBeLessThan(TOL);
      // The half operands change the result: f32 operands give another forward.
      expect(relErr(await y.read(), mm(await x.read(), await w.read(), R, outF, inF, false, false).map((v, i) => v + bv[i % outF]!))).toBeGreaterThan(1e-5);

      // matmul: a batched A times a broadcast Bᵀ (the language-model head's form).
      const [Z, M, K, N] = [3, 7, 10, 11];
      const a = e.tensor(randArray(Z * M * K, 5), [Z, M, K], { requiresGrad: true });
      const hw = e.tensor(randArray(N * K, 6), [N, K], { requiresGrad: true });
      const gz = e.tensor(randArray(Z * M * N, 7), [Z, M, N]);
      const [ah, bh, gzh] = await Promise.all([castHalf(a).read(), castHalf(hw).read(), castHalf(gz).read()]);
      startGrad(e);
      const out = matmul(a, hw, { transB: true });
      backward(out, gz);
      expect(relErr(await out.read(), mm(ah, bh, Z * M, N, K, false, true))).toBeLessThan(TOL);
      expect(relErr(await a.grad!.read(), mm(gzh, bh, Z * M, K, N, false, false))).toBeLessThan(TOL);
      expect(relErr(await hw.grad!.read(), mm(gzh, ah, N, K, Z * M, true, false))).toBeLessThan(TOL);
      expect(await flags(e)).toEqual([0, 0]);
      setPrecision(e, 'f32');
    });
});

describe('dynamic loss scale', () => {
  const decls = (seed: number): ParamDecl[] =>
    (
      [
        ['w', [17, 3]],
        ['b', [5]],
        ['v', [1000]],
      ] as [string, number[]][]
    ).map(([name, shape], i) => ({ name, shape, init: randArray(shape.reduce((p, q) => p * q, 1), seed + i) }));

  it('unscaled steps equal a plain AdamW bitwise; an overflow skips the step bitwise and halves the scale; growth after the interval, capped; activation overflows only counted', async () => {
    const e = await f16Engine('software');
    e.clear(e.halfFlags!);
    const scaled = ParameterStore.create(e, decls(1));
    const plain = ParameterStore.create(e, decls(1));
    const scaler = new LossScaler(e, { initScale: 2 ** 10, interval: 2, maxScale: 2 ** 11 });
    const hp = { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 1 };
    const optS = new AdamW(scaled, { ...hp, lossScaler: scaler });
    const optP = new AdamW(plain, hp);
    const read = async (s: ParameterStore) => {
      const all = await s.readAll();
      const mv = await s.readOptimizerState();
      return JSON.stringify([[...all].map(([k, v]) => [k, [...v]]), [...mv.m].map(([k, v]) => [k, [...v]]), [...mv.v].map(([k, v]) => [k, [...v]])]);
    };
    let t = 0;
    /** One step: gradients g (×S into the scaled store), optionally an overflowing cast first. */
    const step = async (overflow: 'gradient' | 'activation' | null, nonFinite = false): Promise<void> => {
      const S = (await scaler.read()).scale;
      t++;
      for (const [name, p] of scaled.entries()) {
        const g = randn(p.numel, 77 * t + name.length, 0.3);
        if (nonFinite && name === 'b') g[2] = NaN;
        e.write(p.grad!, Float32Array.from(g, (v) => v * S));
        e.write(plain.get(name).grad!, g);
      }
      if (overflow) castHalf(e.tensor(Float32Array.from([1e5, 0, 0, 0])), overflow);
      optS.step();
      if (!overflow || overflow === 'activation') {
        if (!nonFinite) optP.step();
      }
    };
    await step(null);
    // The step divided the gradients (written ×1024) back to the plain ones in place.
    for (const [name, p] of scaled.entries()) expect([...(await p.grad!.read())]).toEqual([...(await plain.get(name).grad!.read())]);
    expect(await read(scaled)).toBe(await read(plain));
    expect(await scaler.read()).toEqual({ scale: 1024, goodSteps: 1, skippedSteps: 0, activationOverflowSteps: 0 });
    await step('activation');
    expect(await read(scaled)).toBe(await read(plain));
    expect(await scaler.read()).toEqual({ scale: 2048, goodSteps: 0, skippedSteps: 0, activationOverflowSteps: 1 });
    const before = await read(scaled);
    await step('gradient');
    expect(await read(scaled)).toBe(before);
    expect((await optS.lastGradState().read())[2]).toBe(0);
    expect(await scaler.read()).toEqual({ scale: 1024, goodSteps: 0, skippedSteps: 1, activationOverflowSteps: 1 });
    await step(null, true);
    expect(await read(scaled)).toBe(before);
    expect((await scaler.read()).scale).toBe(512);
    // At the largest scale, the growth after the interval stays capped.
    scaler.load({ scale: 2048, goodSteps: 0, skippedSteps: 2, activationOverflowSteps: 1 });
    await step(null);
    await step(null);
    expect(await scaler.read()).toEqual({ scale: 2048, goodSteps: 0, skippedSteps: 2, activationOverflowSteps: 1 });
    expect(await flags(e)).toEqual([0, 0]);
    scaler.destroy();
    optS.destroy();
    optP.destroy();
  });

  it('refuses what it cannot do: options out of range, stacked stores, an engine not in f16, an adapter without shader-f16', async () => {
    const e = await f16Engine('software');
    expect(() => new LossScaler(e, { backoff: 2 })).toThrow(/backoff must be < 1/);
    expect(() => new LossScaler(e, { initScale: 4, maxScale: 2 })).toThrow(/minScale ≤ initScale ≤ maxScale/);
    expect(() => new LossScaler(e, { interval: 1.5 })).toThrow(/interval must be an integer/);
    expect(() => setPrecision(e, 'fp8' as never)).toThrow(/precision must be one of f32, f16, bf16; got "fp8"/);
    const plain = await Engine.create({ disableFeatures: ['shader-f16'] });
    try {
      expect(() => setPrecision(plain, 'f16')).toThrow(/needs the adapter feature shader-f16.*vulkan_enable_f16_on_nvidia/);
      expect(() => castHalf(plain.tensor([1, 2]))).toThrow(/not in a half precision/);
      expect(plain.precision).toBe('f32');
      // bfloat16 needs no feature.
      setPrecision(plain, 'bf16');
      expect(await castHalf(plain.tensor([1, 2.5, -3])).read()).toEqual(Float32Array.from([1, 2.5, -3]));
      setPrecision(plain, 'f32');
    } finally {
      plain.destroy();
    }
  });
});
