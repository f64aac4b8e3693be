/**
 * The matmul kernel family (kernels/matmul.ts) and its ops (engine/ops/matmul.ts): every variant ×
 * every form (NN, NT, TN, TT, batched, broadcast operands, bias, accumulate) against a float64
 * reference on odd and aligned shapes with poisoned outputs; colsum; backward of matmul and linear
 * against the float64 analytic gradient (itself checked by central differences); the
 * accumulate-into-parameter-gradient path; determinism.
 */
import { describe, expect, it } from 'vitest';
import { backward, startGrad } from '../../engine/autograd.ts';
import { Engine } from '../../engine/engine.ts';
import { chooseMatmulVariant, chooseSplitK, colsum, colsumChunkRows, encodeColsum, encodeMatmul, hasSubgroupVariants, linear, matmul } from '../../engine/ops/matmul.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { matmulKernel } from '../../kernels/matmul.ts';
import { planFor } from '../../engine/plan.ts';
import { POISON, poison, randArray, relErr, useEngine, useEnginesAs } from '../helpers/gpu.ts';
import { lossOf, refGrads, refLinear, refMatmul } from '../reference/matmul.ts';

const engine = useEngine();
const engineAs = useEnginesAs();
const TOL = 1e-4;

/**
 * Variants under test: the reference, the plain register tile, the subgroup tiles (one with K
 * rows loaded in a loop and 4 columns per lane, one with 8 columns per lane:
 * between them every code path of the family; the production tiles differ only in TM), shared
 * memory.
 */
async function variants(): Promise<string[]> {
  const e = await engine();
  return ['naive', 'reg4x4', ...(hasSubgroupVariants(e) ? ['sg32x4', 'sg16x4', 'sg8x8'] : []), 'shared', 'shared128'];
}

const ref64 = refMatmul;

function stored(rows: number, cols: number, t: boolean): [number, number] {
  return t ? [cols, rows] : [rows, cols];
}

async function readPoisoned(e: Engine, t: Tensor): Promise<Float32Array> {
  const d = (await t.read()) as Float32Array;
  expect(d.some((v) => v === POISON)).toBe(false);
  return d;
}

/**
 * C (+)= op(A)·op(B) (+ bias) on fresh random operands for each [bias, accumulate] case, checked
 * against float64 (poisoned output when not accumulating). Returns the next seed.
 */
async function checkBiasAccumulate(
  e: Engine,
  p: { M: number; N: number; K: number; tA: boolean; tB: boolean; variant: string; splitK?: number },
  cases: [boolean, boolean][],
  seed: number,
): Promise<number> {
  const { M, N, K, tA, tB, variant } = p;
  const a = randArray(M * K, seed++);
  const b = randArray(K * N, seed++);
  const bias = randArray(N, seed++);
  const c0 = randArray(M * N, seed++);
  const ta = e.tensor(a, stored(M, K, tA));
  const tb = e.tensor(b, stored(K, N, tB));
  const tbias = e.tensor(bias);
  const prod = ref64(a, b, M, N, K, tA, tB);
  for (const [useBias, acc] of cases) {
    const c = acc ? e.tensor(c0, [M, N]) : e.empty([M, N]);
    if (!acc) poison(e, c);
    encodeMatmul(e, ta, tb, c, { M, N, K, transA: tA, transB: tB, accumulate: acc, variant, ...(p.splitK ? { splitK: p.splitK } : {}) }, useBias ? tbias : null);
    const got = await readPoisoned(e, c);
    const want = prod.map((v, i) => v + (useBias ? bias[i % N]! : 0) + (acc ? c0[i]! : 0));
    const what = `${variant} ${tA ? 't' : 'n'}${tB ? 't' : 'n'} ${M}x${N}x${K}${p.splitK ? ` splitK ${p.splitK}` : ''} bias=${useBias} acc=${acc}`;
    expect(relErr(got, want), what).toBeLessThanOrEqual(TOL);
  }
  return seed;
}

const FORMS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
const formName = ([a, b]: [boolean, boolean]) => `${a ? 't' : 'n'}${b ? 't' : 'n'}`;

// Odd shapes (scalar loads, clamped edges, K remainders) and aligned ones (vec4 loads).
const ODD: [number, number, number][] = [
  [1, 1, 1],
  [3, 17, 33],
  [17, 3, 127],
  [33, 127, 17],
  [5, 3, 257],
  [130, 33, 3],
];
const ALIGNED: [number, number, number][] = [
  [4, 4, 4],
  [64, 36, 40],
  [36, 132, 68],
];

describe('matmul kernels', () => {
  it('every variant × form on odd and aligned shapes, poisoned outputs (M, N, K)', async () => {
    const e = await engine();
    let seed = 1;
    for (const variant of await variants())
      for (const form of FORMS)
        for (const [M, N, K] of [...ODD, ...ALIGNED]) {
          const [tA, tB] = form;
          const a = randArray(M * K, seed++);
          const b = randArray(K * N, seed++);
          const ta = e.tensor(a, stored(M, K, tA));
          const tb = e.tensor(b, stored(K, N, tB));
          const c = e.empty([M, N]);
          poison(e, c);
          encodeMatmul(e, ta, tb, c, { M, N, K, transA: tA, transB: tB, variant });
          const got = await readPoisoned(e, c);
          const err = relErr(got, ref64(a, b, M, N, K, tA, tB));
          expect(err, `${variant} ${formName(form)} M=${M} N=${N} K=${K}`).toBeLessThanOrEqual(TOL);
        }
  });

  it('bias and accumulate (C = C + A·B + bias) for every variant', async () => {
    const e = await engine();
    let seed = 1000;
    for (const variant of await variants())
      for (const [M, N, K] of [
        [17, 33, 127],
        [64, 36, 40],
        [5, 3, 257],
      ] as [number, number, number][])
        for (const [tA, tB] of [FORMS[0]!, FORMS[1]!, FORMS[2]!])
          seed = await checkBiasAccumulate(e, { M, N, K, tA, tB, variant }, [
            [true, false],
            [false, true],
            [true, true],
          ], seed);
  });

  it('batched products with per-operand strides; stride 0 broadcasts', async () => {
    const e = await engine();
    let seed = 2000;
    const batch = 3;
    for (const variant of await variants())
      for (const [M, N, K] of [
        [17, 33, 9],
        [8, 12, 20],
      ] as [number, number, number][])
        for (const form of [FORMS[0]!, FORMS[1]!, FORMS[2]!])
          for (const [aB, bB] of [
            [true, true],
            [true, false],
            [false, true],
          ]) {
            const [tA, tB] = form;
            const a = randArray((aB ? batch : 1) * M * K, seed++);
            const b = randArray((bB ? batch : 1) * K * N, seed++);
            const ta = e.tensor(a);
            const tb = e.tensor(b);
            const c = e.empty([batch, M, N]);
            poison(e, c);
            encodeMatmul(e, ta, tb, c, { M, N, K, batch, transA: tA, transB: tB, strideA: aB ? M * K : 0, strideB: bB ? K * N : 0, variant });
            const got = await readPoisoned(e, c);
            const want = new Float64Array(batch * M * N);
            for (let z = 0; z < batch; z++) want.set(ref64(a, b, M, N, K, tA, tB, aB ? z * M * K : 0, bB ? z * K * N : 0), z * M * N);
            expect(relErr(got, want), `${variant} ${formName(form)} batched a=${aB} b=${bB} ${M}x${N}x${K}`).toBeLessThanOrEqual(TOL);
          }
  });

  it('the matmul op: 2D, batched 3D, broadcast 2D operands, all transposes', async () => {
    const e = await engine();
    let seed = 3000;
    const [M, N, K, batch] = [9, 14, 11, 2];
    for (const form of FORMS)
      for (const [aB, bB] of [
        [false, false],
        [true, true],
        [true, false],
        [false, true],
      ]) {
        const [tA, tB] = form;
        const a = randArray((aB ? batch : 1) * M * K, seed++);
        const b = randArray((bB ? batch : 1) * K * N, seed++);
        const ta = e.tensor(a, [...(aB ? [batch] : []), ...stored(M, K, tA)]);
        const tb = e.tensor(b, [...(bB ? [batch] : []), ...stored(K, N, tB)]);
        const c = matmul(ta, tb, { transA: tA, transB: tB });
        expect(c.shape).toEqual(aB || bB ? [batch, M, N] : [M, N]);
        const got = await c.read();
        const nb = aB || bB ? batch : 1;
        const want = new Float64Array(nb * M * N);
        for (let z = 0; z < nb; z++) want.set(ref64(a, b, M, N, K, tA, tB, aB ? z * M * K : 0, bB ? z * K * N : 0), z * M * N);
        expect(relErr(got, want), `${formName(form)} a3d=${aB} b3d=${bB}`).toBeLessThanOrEqual(TOL);
      }
    expect(() => matmul(e.tensor(randArray(6, 1), [2, 3]), e.tensor(randArray(8, 2), [4, 2]))).toThrow(/inner dimensions/);
  });

  it('colsum: odd row and column counts, one and two passes, accumulate', async () => {
    const e = await engine();
    let seed = 4000;
    for (const [R, N] of [
      [1, 1],
      [63, 3],
      [64, 4],
      [65, 130],
      [1000, 17],
      [2048, 384],
      [5000, 12],
    ] as [number, number][]) {
      const x = randArray(R * N, seed++);
      const tx = e.tensor(x, [R, N]);
      const want = new Float64Array(N);
      for (let r = 0; r < R; r++) for (let n = 0; n < N; n++) want[n] += x[r * N + n]!;
      // [passes, chunk rows]: automatic, one pass, two with COLSUM_CHUNK rows, two with ~√R rows (the
      // hardware plan) and with an odd chunk length.
      for (const [passes, chunkRows] of [
        [1, undefined],
        [2, undefined],
        [undefined, undefined],
        [2, Math.max(64, Math.ceil(Math.sqrt(R)))],
        [2, 37],
      ] as const) {
        const out = e.empty([N]);
        poison(e, out);
        encodeColsum(e, tx, R, N, out, false, passes, chunkRows);
        expect(relErr(await readPoisoned(e, out), want), `colsum ${R}x${N} passes ${passes} chunk ${chunkRows}`).toBeLessThanOrEqual(1e-5);
        const base = randArray(N, seed++);
        const acc = e.tensor(base);
        encodeColsum(e, tx, R, N, acc, true, passes, chunkRows);
        expect(relErr(await acc.read(), want.map((v, i) => v + base[i]!)), `colsum+= ${R}x${N} passes ${passes} chunk ${chunkRows}`).toBeLessThanOrEqual(1e-5);
      }
      expect(relErr(await colsum(tx).read(), want)).toBeLessThanOrEqual(1e-5);
    }
  });

  it("chooses a variant by the engine's plan and the shape, visible in the kernel name", async () => {
    const e = await engine();
    const tiny = chooseMatmulVariant(e, 4, 4, 4);
    expect(tiny).toBe('naive');
    const big = chooseMatmulVariant(e, 2048, 384, 128);
    const swPlan = e.plan.kind === 'software';
    if (swPlan && hasSubgroupVariants(e)) {
      expect(chooseMatmulVariant(e, 16, 48, 63000)).toBe('sg16x4');
      // d = 32 weight gradients keep the 32-row tile; d = 64 ones take the 64-row tiles from N = 96.
      expect(chooseMatmulVariant(e, 32, 128, 9216)).toBe('sg32x4');
      expect(chooseMatmulVariant(e, 64, 16, 63000)).toBe('sg32x4');
      expect(chooseMatmulVariant(e, 64, 192, 9216)).toBe('sg64x8');
      // wide, deep products whose B goes through a texture take the 64×128 tile; Bᵀ does not
      expect(chooseMatmulVariant(e, 1024, 1024, 1024)).toBe(process.env.KINDLING_MATMUL_TEXTURE === '0' ? 'sg64x8' : 'sg64x16');
      expect(chooseMatmulVariant(e, 1024, 1024, 1024, 1, true)).toBe('sg64x8');
    }
    if (swPlan) expect(big).toMatch(hasSubgroupVariants(e) ? /^sg\d/ : /^reg\d/);
    else {
      expect(big).toBe('shared');
      expect(chooseMatmulVariant(e, 4096, 4096, 1024)).toBe('shared128');
    }
    const spec = matmulKernel({ variant: big, transA: false, transB: true, vecA: true, vecB: true, vecC: true });
    expect(spec.name).toBe(`matmul.${big}.nt[a4,b4,c4]`);
    expect(() => matmulKernel({ variant: 'bogus', transA: false, transB: false, vecA: false, vecB: false, vecC: false })).toThrow(/unknown variant/);
  });

  /**
   * One accumulating product C = c0 + op(A)·op(B) (+ bias) through the texture path (`tex` options)
   * and through storage buffers: the first must match float64, and, when `bitwise`, equal the
   * second bit for bit. Strides: dense, or 0 (broadcast) for A or B.
   */
  async function checkTexturePath(
    e: Engine,
    c: { M: number; N: number; K: number; batch: number; tA: boolean; tB: boolean; bcastA: boolean; bcastB: boolean; variant: string; withBias: boolean },
    tex: { texA?: boolean; texB?: boolean },
    bitwise: boolean,
    seed: number,
  ): Promise<void> {
    const { M, N, K, batch, tA, tB, variant, withBias } = c;
    const sA = c.bcastA ? 0 : M * K;
    const sB = c.bcastB ? 0 : K * N;
    const a = randArray((c.bcastA ? 1 : batch) * M * K, seed);
    const b = randArray((c.bcastB ? 1 : batch) * K * N, seed + 1);
    const bias = randArray(N, seed + 2);
    const c0 = randArray(batch * M * N, seed + 3);
    const ta = e.tensor(a, [a.length]);
    const tb = e.tensor(b, [b.length]);
    const tbias = e.tensor(bias, [N]);
    const outs: Float32Array[] = [];
    for (const opts of bitwise ? [tex, { texA: false, texB: false }] : [tex]) {
      const out = e.tensor(c0, [batch, M, N]);
      encodeMatmul(e, ta, tb, out, { M, N, K, batch, transA: tA, transB: tB, strideA: sA, strideB: sB, accumulate: true, variant, ...opts }, withBias ? tbias : null);
      outs.push((await out.read()) as Float32Array);
      out.dispose();
    }
    const want = new Float64Array(batch * M * N);
    for (let z = 0; z < batch; z++) {
      const r = ref64(a, b, M, N, K, tA, tB, sA === 0 ? 0 : z * M * K, sB === 0 ? 0 : z * K * N);
      for (let i = 0; i < M * N; i++) want[z * M * N + i] = r[i]! + c0[z * M * N + i]! + (withBias ? bias[i % N]! : 0);
    }
    const what = `${variant} ${tA ? 't' : 'n'}${tB ? 't' : 'n'} ${M}x${N}x${K} batch ${batch}${c.bcastA ? ' A broadcast' : ''}${c.bcastB ? ' B broadcast' : ''}${withBias ? ' bias' : ''}`;
    expect(relErr(outs[0]!, want), what).toBeLessThanOrEqual(TOL);
    if (bitwise) expect(Buffer.from(outs[0]!.buffer).equals(Buffer.from(outs[1]!.buffer)), `${what}: texture = buffer bitwise`).toBe(true);
    ta.dispose();
    tb.dispose();
    tbias.dispose();
  }

  it('B through a texture (lavapipe): matches float64 and the storage-buffer kernel bitwise; batched, bias, accumulate', async (ctx) => {
    const e = await engine();
    ctx.skip(!hasSubgroupVariants(e), 'the texture path belongs to the subgroup variants, which need the subgroups feature this adapter lacks');
    let seed = 7001;
    // [M, N, K, batch, B broadcast], forms nn and tn (B not transposed); K not a multiple of 64, so
    // A stays in a buffer.
    const cases: [number, number, number, number, boolean][] = [
      [67, 64, 129, 1, false],
      [132, 192, 36, 1, false],
      [33, 128, 20, 3, false],
      [40, 64, 12, 2, true],
    ];
    for (const [M, N, K, batch, bcastB] of cases)
      for (const tA of [false, true])
        // sg64x16 (64 × 128 tile) on the 132 × 192 case only: partial tiles both ways, vec4 A in
        // both forms. It only ever runs with B in a texture (its buffer-B kernels take ~25 s each
        // to compile here), so it is checked against float64 alone.
        for (const variant of ['sg32x4', 'sg16x4', 'sg64x8', ...(M === 132 ? ['sg64x16'] : [])])
          for (const withBias of [false, true]) {
            const c = { M, N, K, batch, tA, tB: false, bcastA: false, bcastB, variant, withBias };
            await checkTexturePath(e, c, { texB: true }, variant !== 'sg64x16', (seed += 4));
          }
    // The kernel name says which path ran.
    expect(matmulKernel({ variant: 'sg32x4', transA: false, transB: false, vecA: true, vecB: true, vecC: true, texB: true }).name).toBe('matmul.sg32x4.nn[a4,bt,c4]');
    expect(() => matmulKernel({ variant: 'sg32x4', transA: false, transB: true, vecA: true, vecB: false, vecC: true, texB: true })).toThrow(/texture B/);
  });

  it('A and Bᵀ through textures (lavapipe): match float64 and the storage-buffer kernel bitwise; nn and nt, batched, broadcast, bias, accumulate', async (ctx) => {
    const e = await engine();
    ctx.skip(!hasSubgroupVariants(e), 'the texture path belongs to the subgroup variants, which need the subgroups feature this adapter lacks');
    let seed = 7501;
    // [M, N, K, batch, A broadcast]: K % 64 = 0 (the row pitch of A's texture, and of Bᵀ's in the nt
    // form); odd M and N exercise the clamped edge rows and columns.
    const cases: [number, number, number, number, boolean][] = [
      [67, 64, 64, 1, false],
      [130, 45, 192, 1, false],
      [33, 128, 128, 3, false],
      [40, 20, 64, 2, true],
    ];
    for (const [M, N, K, batch, bcastA] of cases)
      for (const tB of [false, true])
        for (const variant of ['sg32x4', 'sg16x4', 'sg64x8'])
          for (const withBias of [false, true]) {
            const c = { M, N, K, batch, tA: false, tB, bcastA, bcastB: false, variant, withBias };
            await checkTexturePath(e, c, { texA: true, texB: true }, true, (seed += 4));
          }
    expect(matmulKernel({ variant: 'sg64x8', transA: false, transB: true, vecA: true, vecB: true, vecC: true, texA: true }).name).toBe('matmul.sg64x8.nt[at,b4,c4]');
    expect(matmulKernel({ variant: 'sg64x8', transA: false, transB: true, vecA: true, vecB: true, vecC: true, texA: true, texB: true }).name).toBe('matmul.sg64x8.nt[at,bt,c4]');
    expect(() => matmulKernel({ variant: 'sg32x4', transA: true, transB: false, vecA: true, vecB: true, vecC: true, texA: true })).toThrow(/texture A/);
  });

  it('split-K (shared variants): every form, odd and aligned shapes, uneven chunks, bias and accumulate', async () => {
    const e = await engine();
    let seed = 5000;
    for (const variant of ['shared', 'shared128'])
      for (const [M, N, K, S] of [
        [3, 17, 1000, 3], // odd: scalar loads, last chunk short
        [17, 5, 257, 7], // chunks of 48 k's (whole 16-k tiles), last one 17
        [36, 132, 68, 2], // aligned: vec4 loads and stores
        [130, 8, 4000, 16], // more than one row tile
      ] as [number, number, number, number][])
        for (const [tA, tB] of FORMS)
          seed = await checkBiasAccumulate(e, { M, N, K, tA, tB, variant, splitK: S }, [
            [false, false],
            [true, true],
          ], seed);
    const x = e.tensor(randArray(8 * 8 * 2, 1), [2, 8, 8]);
    expect(() => encodeMatmul(e, x, x, e.empty([2, 8, 16]), { M: 8, N: 8, K: 8, batch: 2, strideC: 128, variant: 'shared', splitK: 2 })).toThrow(/splitK of a batch needs a dense C/);
    expect(() => encodeMatmul(e, x, x, e.empty([8, 8]), { M: 8, N: 8, K: 8, variant: 'reg4x4', splitK: 2 })).toThrow(/splitK needs a shared variant/);
  });

  it('chooses split-K on the hardware plan only, for small outputs over long K', async () => {
    const e = await engine();
    // The hardware plan of an adapter without subgroups and 2 GiB bindings, as an engine would hold it.
    const planned = (maxStorageBufferBindingSize: number) =>
      ({ plan: planFor({ software: false, subgroupMinSize: 0, subgroupMaxSize: 0 }, { maxStorageBufferBindingSize }, []) }) as unknown as Engine;
    const hw = planned(2 ** 31 - 4);
    // Two-pass colsum chunks: 64 rows on the software plan, ~√R on the hardware one.
    const sw = planFor({ software: true, subgroupMinSize: 0, subgroupMaxSize: 0 }, { maxStorageBufferBindingSize: 2 ** 31 - 4 }, []);
    expect(sw.matmul.colsumChunkRows(63000)).toBe(64);
    if (e.plan.kind === 'software') expect(colsumChunkRows(e, 63000)).toBe(64);
    expect(colsumChunkRows(hw, 63000)).toBe(251);
    expect(colsumChunkRows(hw, 2048)).toBe(64);
    // The software plan never splits.
    if (e.plan.kind === 'software') expect(chooseSplitK(e, 'shared', 128, 384, 2048)).toBe(1);
    expect(sw.matmul.splitK('shared', 128, 384, 2048)).toBe(1);
    // Small shape-(a) weight gradient: 12 tiles of 64×64 → 8 splits of 256 (K-limited).
    expect(chooseSplitK(hw, 'shared', 128, 384, 2048)).toBe(8);
    // GPT-2's 768×768 dW over 4096 rows: 144 tiles of 64 → split 2.
    expect(chooseSplitK(hw, 'shared', 768, 768, 4096)).toBe(2);
    // shared128 aims at ~1024 workgroups in at most 8 splits: 36 tiles → 8, 192 tiles → 5, 144 → 7.
    expect(chooseSplitK(hw, 'shared128', 768, 768, 4096)).toBe(8);
    expect(chooseSplitK(hw, 'shared128', 4096, 768, 3072)).toBe(5);
    expect(chooseSplitK(hw, 'shared128', 768, 3072, 4096)).toBe(7);
    // K-limited (chunks of ≥ 256 k's) and memory-limited (the [S, M, N] partials in one binding).
    expect(chooseSplitK(hw, 'shared128', 768, 768, 1024)).toBe(4);
    const small = planned(32 << 20);
    expect(chooseSplitK(small, 'shared128', 2048, 2048, 4096)).toBe(2);
    expect(chooseSplitK(hw, 'shared128', 2048, 2048, 4096)).toBe(4);
    // The variant follows: 128×128 tiles in splits for mid-sized outputs over long K, else 64×64.
    expect(chooseMatmulVariant(hw, 768, 768, 4096)).toBe('shared128');
    expect(chooseMatmulVariant(hw, 768, 768, 512)).toBe('shared');
    expect(chooseMatmulVariant(hw, 384, 384, 4096)).toBe('shared');
    expect(chooseMatmulVariant(hw, 4096, 2304, 768)).toBe('shared128');
    // Enough tiles already, short K, or a non-shared variant: no split.
    expect(chooseSplitK(hw, 'shared128', 4096, 4096, 4096)).toBe(1);
    expect(chooseSplitK(hw, 'shared', 128, 384, 512)).toBe(1);
    expect(chooseSplitK(hw, 'reg4x4', 128, 384, 2048)).toBe(1);
    // Batched (stacked models' weight gradients): 256 workgroups over the batch, chunks ≤ 1024 k's.
    expect(chooseSplitK(hw, 'shared', 128, 384, 2048, 4)).toBe(6);
    expect(chooseMatmulVariant(hw, 16, 48, 63_000, 16)).toBe('shared');
    expect(chooseSplitK(hw, 'shared', 16, 48, 63_000, 16)).toBe(62);
  });

  it("the GPU plan's automatic choice for a mid-sized output over long K: shared128 in 4 splits, summed right", async () => {
    // 512×1024 outputs (32 tiles of 128×128) over K = 1024: shared128 with 4 splits of 256 and a
    // summing pass that adds the bias, on an engine that plans as a GPU would.
    const e = await Engine.create({ planAs: 'hardware' });
    try {
      const [M, N, K] = [512, 1024, 1024];
      expect(chooseMatmulVariant(e, M, N, K)).toBe('shared128');
      expect(chooseSplitK(e, 'shared128', M, N, K)).toBe(4);
      const a = randArray(M * K, 8101);
      const b = randArray(K * N, 8102);
      const bias = randArray(N, 8103);
      const ta = e.tensor(a, [M, K]);
      const tb = e.tensor(b, [K, N]);
      const tbias = e.tensor(bias, [N]);
      const tc = e.empty([M, N]);
      poison(e, tc);
      if (e.profiler.supported) e.profiler.start();
      encodeMatmul(e, ta, tb, tc, { M, N, K }, tbias);
      const names = e.profiler.supported ? (await e.profiler.stop()).dispatches.map((d) => d.kernel) : [];
      if (e.profiler.supported) expect(names).toEqual(['matmul.shared128.nn[a4,b4,c4]', 'matmul.splitk_sum[v4]']);
      const got = await readPoisoned(e, tc);
      // Every column of 24 rows spread over the output (a full float64 product would take seconds).
      for (let r = 0; r < 24; r++) {
        const i = (r * 149 + 5) % M;
        const want = ref64(a.subarray(i * K, (i + 1) * K), b, 1, N, K, false, false);
        for (let j = 0; j < N; j++) want[j] = want[j]! + bias[j]!;
        expect(relErr(got.subarray(i * N, (i + 1) * N), want)).toBeLessThan(TOL);
      }
      for (const t of [ta, tb, tbias, tc]) t.dispose();
    } finally {
      await e.sync().catch(() => undefined);
      e.destroy();
    }
  });

  it("the GPU plan's split-K of a batch (stacked weight gradients, Aᵀ·B per entry): bias and accumulate per entry", async () => {
    // 3 products of 20×24 outputs over K = 2100 rows: 'shared' in 4 splits of 528 per entry.
    const e = await Engine.create({ planAs: 'hardware' });
    try {
      const [G, M, N, K] = [3, 20, 24, 2100];
      expect(chooseMatmulVariant(e, M, N, K, G)).toBe('shared');
      expect(chooseSplitK(e, 'shared', M, N, K, G)).toBeGreaterThan(1);
      const a = randArray(G * K * M, 8201);
      const b = randArray(G * K * N, 8202);
      const bias = randArray(N, 8203);
      const c0 = randArray(G * M * N, 8204);
      const tc = e.tensor(c0, [G, M, N]);
      if (e.profiler.supported) e.profiler.start();
      encodeMatmul(e, e.tensor(a, [G, K, M]), e.tensor(b, [G, K, N]), tc, { M, N, K, batch: G, transA: true, accumulate: true }, e.tensor(bias, [N]));
      const names = e.profiler.supported ? (await e.profiler.stop()).dispatches.map((d) => d.kernel) : [];
      if (e.profiler.supported) expect(names).toEqual(['matmul.shared.tn[c4]', 'matmul.splitk_sum[v4]']);
      const got = (await tc.read()) as Float32Array;
      for (let g = 0; g < G; g++) {
        const want = ref64(a.subarray(g * K * M, (g + 1) * K * M), b.subarray(g * K * N, (g + 1) * K * N), M, N, K, true, false);
        for (let i = 0; i < M * N; i++) want[i] = want[i]! + bias[i % N]! + c0[g * M * N + i]!;
        expect(relErr(got.subarray(g * M * N, (g + 1) * M * N), want), `entry ${g}`).toBeLessThan(TOL);
      }
    } finally {
      await e.sync().catch(() => undefined);
      e.destroy();
    }
  });

  it("B's column sums beside the product (colsumB, the bias gradient beside dW): shared variants, with and without splits, overwrite and accumulate; others fall back to colsum", async () => {
    let seed = 5200;
    for (const planAs of ['software', 'hardware'] as const) {
      const e = await engineAs(planAs);
      for (const variant of ['shared', 'shared128', 'naive', ...(hasSubgroupVariants(e) ? ['sg32x4'] : ['reg4x4'])])
        for (const [M, N, K, S] of [
          [5, 17, 300, 1], // odd: scalar loads, one partial tile of columns
          [5, 17, 300, 3], // the same in 3 splits
          [70, 132, 1000, 1], // two row tiles of 64 (only the first writes the sums), vec4
          [70, 132, 1000, 4],
          [130, 260, 2100, 5], // more than one row and column tile of 128
        ] as [number, number, number, number][])
          for (const [tA, acc] of [
            [true, false],
            [true, true],
            [false, true],
          ] as [boolean, boolean][]) {
            if (S > 1 && !variant.startsWith('shared')) continue;
            const a = randArray(M * K, seed++);
            const b = randArray(K * N, seed++);
            const c0 = randArray(M * N, seed++);
            const s0 = randArray(N, seed++);
            const tc = e.tensor(c0, [M, N]);
            const ts = e.tensor(s0, [N]);
            if (!acc) poison(e, ts);
            encodeMatmul(e, e.tensor(a, stored(M, K, tA)), e.tensor(b, [K, N]), tc, { M, N, K, transA: tA, accumulate: true, variant, splitK: S, colsumB: { out: ts, accumulate: acc } });
            const want = ref64(a, b, M, N, K, tA, false);
            for (let i = 0; i < M * N; i++) want[i] = want[i]! + c0[i]!;
            const sums = new Float64Array(N);
            for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) sums[n] = sums[n]! + b[k * N + n]!;
            if (acc) for (let n = 0; n < N; n++) sums[n] = sums[n]! + s0[n]!;
            const tag = `${planAs} ${variant} ${tA ? 't' : 'n'}n ${M}×${N}×${K} in ${S}${acc ? ', accumulate' : ''}`;
            expect(relErr(await tc.read(), want), `C ${tag}`).toBeLessThan(TOL);
            expect(relErr(await readPoisoned(e, ts), sums), `column sums ${tag}`).toBeLessThan(1e-5);
          }
      // The fused kernels are what ran: one product (+ one split-K pass), no colsum.
      if (e.profiler.supported) {
        const [M, N, K] = [70, 132, 1000];
        const t = (n: number, shape: number[]) => e.tensor(randArray(n, seed++), shape);
        e.profiler.start();
        encodeMatmul(e, t(K * M, [K, M]), t(K * N, [K, N]), e.empty([M, N]), { M, N, K, transA: true, variant: 'shared', splitK: 4, colsumB: { out: e.empty([N]), accumulate: false } });
        encodeMatmul(e, t(K * M, [K, M]), t(K * N, [K, N]), e.empty([M, N]), { M, N, K, transA: true, variant: 'shared128', splitK: 1, colsumB: { out: e.empty([N]), accumulate: true } });
        const names = (await e.profiler.stop()).dispatches.map((d) => d.kernel);
        expect(names).toEqual([`matmul.shared.tn[${planAs === 'software' ? 'sw,' : ''}c4,s]`, 'matmul.splitk_sum[v4,s]', 'matmul.shared128.tn[b4,c4,s]']);
      }
      const x = e.tensor(randArray(64, 1), [8, 8]);
      expect(() => encodeMatmul(e, x, x, e.empty([8, 8]), { M: 8, N: 8, K: 8, transB: true, colsumB: { out: e.empty([8]), accumulate: false } })).toThrow(/colsumB needs B not transposed/);
    }
  });

  it('a bias per batch entry (strideBias: stacked layers) for every variant, with and without split-K; column sums of a batch (colsumB)', async () => {
    let seed = 5400;
    for (const planAs of ['software', 'hardware'] as const) {
      const e = await engineAs(planAs);
      const G = 3;
      for (const variant of await variants())
        for (const [M, N, K, S] of [
          [5, 17, 300, 1],
          [33, 20, 130, 1], // vec4 C and bias (N % 4 = 0)
          [5, 17, 1100, 3],
          [70, 132, 1000, 4],
        ] as [number, number, number, number][])
          for (const tA of [false, true]) {
            if (S > 1 && !variant.startsWith('shared')) continue;
            if (variant === 'sg8x8' && planAs === 'hardware') continue;
            const a = randArray(G * M * K, seed++);
            const b = randArray(G * K * N, seed++);
            const bias = randArray(G * N, seed++);
            const c0 = randArray(G * M * N, seed++);
            const s0 = randArray(G * N, seed++);
            const tc = e.tensor(c0, [G, M, N]);
            const ts = e.tensor(s0, [G, N]);
            encodeMatmul(
              e,
              e.tensor(a, [G, ...stored(M, K, tA)]),
              e.tensor(b, [G, K, N]),
              tc,
              { M, N, K, batch: G, transA: tA, accumulate: true, variant, splitK: S, strideBias: N, colsumB: { out: ts, accumulate: true } },
              e.tensor(bias, [G, N]),
            );
            const got = await tc.read();
            const sums = await ts.read();
            const tag = `${planAs} ${variant} ${tA ? 't' : 'n'}n ${G}×${M}×${N}×${K} in ${S}`;
            for (let g = 0; g < G; g++) {
              const want = ref64(a.subarray(g * M * K, (g + 1) * M * K), b.subarray(g * K * N, (g + 1) * K * N), M, N, K, tA, false);
              for (let i = 0; i < M * N; i++) want[i] = want[i]! + c0[g * M * N + i]! + bias[g * N + (i % N)]!;
              expect(relErr(got.subarray(g * M * N, (g + 1) * M * N), want), `C entry ${g} ${tag}`).toBeLessThan(TOL);
              const ws = new Float64Array(N);
              for (let n = 0; n < N; n++) {
                ws[n] = s0[g * N + n]!;
                for (let k = 0; k < K; k++) ws[n] = ws[n]! + b[g * K * N + k * N + n]!;
              }
              expect(relErr(sums.subarray(g * N, (g + 1) * N), ws), `column sums entry ${g} ${tag}`).toBeLessThan(1e-5);
            }
          }
    }
  });

  it('is deterministic: the same inputs give bitwise the same outputs', async () => {
    const e = await engine();
    const [M, N, K] = [67, 45, 129];
    const ta = e.tensor(randArray(M * K, 5001), [M, K]);
    const tb = e.tensor(randArray(K * N, 5002), [N, K]);
    for (const variant of await variants()) {
      const runs: Float32Array[] = [];
      for (let r = 0; r < 2; r++) {
        const c = e.empty([M, N]);
        poison(e, c);
        encodeMatmul(e, ta, tb, c, { M, N, K, transB: true, variant });
        runs.push((await c.read()) as Float32Array);
      }
      expect(Buffer.from(runs[0]!.buffer).equals(Buffer.from(runs[1]!.buffer)), variant).toBe(true);
    }
    const x = e.tensor(randArray(1000 * 33, 5003), [1000, 33]);
    const s1 = (await colsum(x).read()) as Float32Array;
    const s2 = (await colsum(x).read()) as Float32Array;
    expect(Buffer.from(s1.buffer).equals(Buffer.from(s2.buffer))).toBe(true);
  });
});

// ------------------------------------------------------------------------------------ backward

describe('matmul backward', () => {
  it('the float64 reference gradient matches central differences', () => {
    const [M, N, K, batch] = [3, 4, 5, 2];
    for (const [tA, tB] of FORMS)
      for (const [aB, bB] of [
        [true, true],
        [true, false],
        [false, true],
      ]) {
        const a = Float64Array.from(randArray((aB ? batch : 1) * M * K, 11));
        const b = Float64Array.from(randArray((bB ? batch : 1) * K * N, 12));
        const g = Float64Array.from(randArray(batch * M * N, 13));
        const { dA, dB } = refGrads(a, b, g, M, N, K, tA, tB, batch, aB, bB);
        const h = 1e-6;
        for (const [x, dx] of [
          [a, dA],
          [b, dB],
        ] as const)
          for (let i = 0; i < x.length; i++) {
            const keep = x[i]!;
            x[i] = keep + h;
            const up = lossOf(a, b, g, M, N, K, tA, tB, batch, aB, bB);
            x[i] = keep - h;
            const down = lossOf(a, b, g, M, N, K, tA, tB, batch, aB, bB);
            x[i] = keep;
            expect(Math.abs((up - down) / (2 * h) - dx[i]!)).toBeLessThan(1e-6);
          }
      }
  });

  it('dA and dB for every form, 2D, batched and broadcast operands', async () => {
    const e = await engine();
    const [M, N, K, batch] = [13, 10, 7, 3];
    let seed = 6000;
    for (const [tA, tB] of FORMS)
      for (const [aB, bB] of [
        [false, false],
        [true, true],
        [true, false],
        [false, true],
      ]) {
        const nb = aB || bB ? batch : 1;
        const a = randArray((aB ? batch : 1) * M * K, seed++);
        const b = randArray((bB ? batch : 1) * K * N, seed++);
        const g = randArray(nb * M * N, seed++);
        const ta = e.tensor(a, [...(aB ? [batch] : []), ...stored(M, K, tA)], { requiresGrad: true });
        const tb = e.tensor(b, [...(bB ? [batch] : []), ...stored(K, N, tB)], { requiresGrad: true });
        startGrad(e);
        const c = matmul(ta, tb, { transA: tA, transB: tB });
        backward(c, e.tensor(g, c.shape));
        const want = refGrads(Float64Array.from(a), Float64Array.from(b), Float64Array.from(g), M, N, K, tA, tB, nb, aB, bB);
        const tag = `${formName([tA, tB])} a3d=${aB} b3d=${bB}`;
        expect(ta.grad!.shape).toEqual(ta.shape);
        expect(tb.grad!.shape).toEqual(tb.shape);
        expect(relErr(await ta.grad!.read(), want.dA), `dA ${tag}`).toBeLessThanOrEqual(TOL);
        expect(relErr(await tb.grad!.read(), want.dB), `dB ${tag}`).toBeLessThanOrEqual(TOL);
      }
  });

  it('a preallocated parameter gradient is accumulated into in place, once', async () => {
    const e = await engine();
    const [M, N, K] = [19, 12, 8];
    const a = randArray(M * K, 7001);
    const w = randArray(N * K, 7002); // a tied weight used as Bᵀ (an lm head)
    const g = randArray(M * N, 7003);
    const prior = randArray(N * K, 7004);
    const ta = e.tensor(a, [M, K], { requiresGrad: true });
    const tw = e.tensor(w, [N, K], { requiresGrad: true });
    tw.grad = e.tensor(prior, [N, K]);
    const gradBuffer = tw.grad;
    startGrad(e);
    const c = matmul(ta, tw, { transB: true });
    backward(c, e.tensor(g, [M, N]));
    expect(tw.grad).toBe(gradBuffer);
    const want = refGrads(Float64Array.from(a), Float64Array.from(w), Float64Array.from(g), M, N, K, false, true, 1, false, false);
    expect(relErr(await tw.grad!.read(), want.dB.map((v, i) => v + prior[i]!))).toBeLessThanOrEqual(TOL);
    expect(relErr(await ta.grad!.read(), want.dA)).toBeLessThanOrEqual(TOL);
  });
});

describe('linear', () => {
  it('forward (bias fused) and backward on odd and aligned shapes, 3D input', async () => {
    const e = await engine();
    let seed = 8000;
    for (const [B, T, I, O] of [
      [1, 1, 1, 1],
      [2, 5, 7, 3],
      [3, 11, 17, 33],
      [2, 16, 32, 48],
    ] as [number, number, number, number][]) {
      const R = B * T;
      const x = randArray(R * I, seed++);
      const w = randArray(I * O, seed++);
      const bias = randArray(O, seed++);
      const g = randArray(R * O, seed++);
      const tx = e.tensor(x, [B, T, I], { requiresGrad: true });
      const tw = e.tensor(w, [I, O], { requiresGrad: true });
      const tb = e.tensor(bias, [O], { requiresGrad: true });
      startGrad(e);
      const y = linear(tx, tw, tb);
      expect(y.shape).toEqual([B, T, O]);
      backward(y, e.tensor(g, [B, T, O]));
      const want = refLinear(x, w, bias, g, R, I, O);
      const tag = `[${B},${T},${I}]·[${I},${O}]`;
      expect(relErr(await y.read(), want.y), `y ${tag}`).toBeLessThanOrEqual(TOL);
      expect(relErr(await tx.grad!.read(), want.dx), `dx ${tag}`).toBeLessThanOrEqual(TOL);
      expect(relErr(await tw.grad!.read(), want.dw), `dW ${tag}`).toBeLessThanOrEqual(TOL);
      expect(relErr(await tb.grad!.read(), want.db), `db ${tag}`).toBeLessThanOrEqual(1e-5);
    }
  });

  it('a batch of G layers (w [G, in, out], bias [G, out]): each run of rows through its layer, forward and backward, on both plans', async () => {
    let seed = 8500;
    for (const planAs of ['software', 'hardware'] as const) {
      const e = await engineAs(planAs);
      for (const [G, Rg, I, O, pre] of [
        [3, 7, 5, 9, false],
        [2, 300, 16, 48, true], // the stacked needle model's c_attn; preallocated gradients (accumulate)
        [4, 2100, 64, 64, true], // long K: split-K on the hardware plan
      ] as [number, number, number, number, boolean][]) {
        const R = G * Rg;
        const x = randArray(R * I, seed++);
        const w = randArray(G * I * O, seed++);
        const bias = randArray(G * O, seed++);
        const g = randArray(R * O, seed++);
        const gw0 = randArray(G * I * O, seed++);
        const gb0 = randArray(G * O, seed++);
        const tx = e.tensor(x, [R, I], { requiresGrad: true });
        const tw = e.tensor(w, [G, I, O], { requiresGrad: true });
        const tb = e.tensor(bias, [G, O], { requiresGrad: true });
        if (pre) {
          tw.grad = e.tensor(gw0, [G, I, O]);
          tb.grad = e.tensor(gb0, [G, O]);
        }
        startGrad(e);
        const y = linear(tx, tw, tb);
        expect(y.shape).toEqual([R, O]);
        backward(y, e.tensor(g, [R, O]));
        const [gy, gdx, gdw, gdb] = [await y.read(), await tx.grad!.read(), await tw.grad!.read(), await tb.grad!.read()];
        for (let l = 0; l < G; l++) {
          const want = refLinear(x.subarray(l * Rg * I, (l + 1) * Rg * I), w.subarray(l * I * O, (l + 1) * I * O), bias.subarray(l * O, (l + 1) * O), g.subarray(l * Rg * O, (l + 1) * Rg * O), Rg, I, O);
          const tag = `${planAs} layer ${l} of ${G}: [${Rg},${I}]·[${I},${O}]`;
          expect(relErr(gy.subarray(l * Rg * O, (l + 1) * Rg * O), want.y), `y ${tag}`).toBeLessThanOrEqual(TOL);
          expect(relErr(gdx.subarray(l * Rg * I, (l + 1) * Rg * I), want.dx), `dx ${tag}`).toBeLessThanOrEqual(TOL);
          const dw0 = pre ? gw0.subarray(l * I * O, (l + 1) * I * O) : null;
          const db0 = pre ? gb0.subarray(l * O, (l + 1) * O) : null;
          expect(relErr(gdw.subarray(l * I * O, (l + 1) * I * O), want.dw.map((v, i) => v + (dw0 ? dw0[i]! : 0))), `dW ${tag}`).toBeLessThanOrEqual(TOL);
          expect(relErr(gdb.subarray(l * O, (l + 1) * O), want.db.map((v, i) => v + (db0 ? db0[i]! : 0))), `db ${tag}`).toBeLessThanOrEqual(1e-5);
        }
      }
      const x = e.tensor(randArray(10 * 4, 1), [10, 4]);
      expect(() => linear(x, e.tensor(randArray(3 * 4 * 2, 2), [3, 4, 2]))).toThrow(/10 rows .* do not split into 3 layers/);
      expect(() => linear(x, e.tensor(randArray(2 * 4 * 2, 2), [2, 4, 2]), e.tensor(randArray(4, 3), [4]))).toThrow(/bias \[4\] is not \[2, 2\]/);
    }
  });

  it('the float64 linear gradients match central differences', () => {
    const [R, I, O] = [3, 4, 2];
    const x = randArray(R * I, 1);
    const w = randArray(I * O, 2);
    const bias = randArray(O, 3);
    const g = randArray(R * O, 4);
    const { dx, dw, db } = refLinear(x, w, bias, g, R, I, O);
    const loss = (xx: Float64Array, ww: Float64Array, bb: Float64Array) => {
      let L = 0;
      for (let r = 0; r < R; r++)
        for (let o = 0; o < O; o++) {
          let s = bb[o]!;
          for (let i = 0; i < I; i++) s += xx[r * I + i]! * ww[i * O + o]!;
          L += g[r * O + o]! * s;
        }
      return L;
    };
    const X = Float64Array.from(x);
    const Wt = Float64Array.from(w);
    const Bb = Float64Array.from(bias);
    const h = 1e-6;
    for (const [v, d] of [
      [X, dx],
      [Wt, dw],
      [Bb, db],
    ] as const)
      for (let i = 0; i < v.length; i++) {
        const keep = v[i]!;
        v[i] = keep + h;
        const up = loss(X, Wt, Bb);
        v[i] = keep - h;
        const down = loss(X, Wt, Bb);
        v[i] = keep;
        expect(Math.abs((up - down) / (2 * h) - d[i]!)).toBeLessThan(1e-6);
      }
  });

  it('writes dW and db straight into preallocated parameter gradients (accumulating)', async () => {
    const e = await engine();
    const [R, I, O] = [37, 24, 20];
    const x = randArray(R * I, 9001);
    const w = randArray(I * O, 9002);
    const bias = randArray(O, 9003);
    const g = randArray(R * O, 9004);
    const gw0 = randArray(I * O, 9005);
    const gb0 = randArray(O, 9006);
    const tx = e.tensor(x, [R, I]); // data: no gradient
    const tw = e.tensor(w, [I, O], { requiresGrad: true });
    const tb = e.tensor(bias, [O], { requiresGrad: true });
    tw.grad = e.tensor(gw0, [I, O]);
    tb.grad = e.tensor(gb0, [O]);
    const [gwBuf, gbBuf] = [tw.grad, tb.grad];
    const dispatchesBefore = e.counters.dispatches;
    startGrad(e);
    const y = linear(tx, tw, tb);
    backward(y, e.tensor(g, [R, O]));
    // forward 1 + dW 1 + db (one pass, R ≤ 64) 1; no extra accumulate dispatches, no dx.
    expect(e.counters.dispatches - dispatchesBefore).toBe(3);
    expect(tw.grad).toBe(gwBuf);
    expect(tb.grad).toBe(gbBuf);
    expect(tx.grad).toBe(null);
    const want = refLinear(x, w, bias, g, R, I, O);
    expect(relErr(await tw.grad!.read(), want.dw.map((v, i) => v + gw0[i]!))).toBeLessThanOrEqual(TOL);
    expect(relErr(await tb.grad!.read(), want.db.map((v, i) => v + gb0[i]!))).toBeLessThanOrEqual(1e-5);
  });
});

describe('operand textures (software plan)', () => {
  it('one texture per width and slot, grown by powers of two: shapes that change every step do not pile up', async () => {
    const e = await engine();
    const ids = new Set<number>();
    for (let h = 1; h <= 5000; h += 7) {
      const t = e.texture(8, h, 1);
      expect(t.height).toBeGreaterThanOrEqual(h);
      ids.add(t.id);
    }
    expect(ids.size).toBeLessThanOrEqual(Math.ceil(Math.log2(5000)) + 1);
    // Shrinking back reuses the tall texture.
    expect(e.texture(8, 3, 1).id).toBe(e.texture(8, 4000, 1).id);
  });

  it('a product through a texture that held a taller operand before reads only its own rows', async () => {
    const e = await engine();
    const [M, N] = [37, 64];
    for (const K of [1500, 40]) {
      const a = randArray(M * K, 9100 + K);
      const b = randArray(K * N, 9200 + K);
      const c = e.empty([M, N]);
      poison(e, c);
      encodeMatmul(e, e.tensor(a, [M, K]), e.tensor(b, [K, N]), c, { M, N, K, texB: true });
      expect(relErr((await c.read()) as Float32Array, ref64(a, b, M, N, K, false, false)), `K ${K}`).toBeLessThan(TOL);
    }
  });
});
