/**
 * Matrix products with autograd: `matmul` (2D and batched, transposed forms, broadcast operands),
 * `linear` (x·W + b with the Hugging Face Conv1D weight layout [in, out], bias fused in the
 * epilogue), `colsum` (the bias gradient), and the low-level `encodeMatmul` every product goes
 * through (variant choice, vec4 specialisation, B through a texture on software adapters, runtime
 * bias/accumulate flags, dispatch cost).
 *
 * Gradients of parameters: when an operand is a leaf whose gradient is already allocated (a
 * parameter with its slot in the gradient arena, or a leaf that received a gradient earlier), the
 * backward writes its product straight into that gradient with accumulate = true (beta = 1) and
 * returns null for it, so autograd adds nothing again. Otherwise it returns the contribution.
 */
import * as KM from '../../kernels/matmul.ts';
import type { Bindable, Engine } from '../engine.ts';
import { storageOf } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { engineOf, expectDtype, gradTarget, grid1d, TEX_SLOT, textureFits, toTexture, useTextures } from './common.ts';

export { useTextures } from './common.ts';

export interface MatmulOptions {
  /** op(A) = Aᵀ: `a` is stored [K, M] (or [batch, K, M]). */
  transA?: boolean;
  /** op(B) = Bᵀ: `b` is stored [N, K] (or [batch, N, K]). */
  transB?: boolean;
  /** Force a kernel variant ('naive', 'reg4x4', 'sg64x8', 'shared', ...); default: chooseMatmulVariant. */
  variant?: string;
}

/** Everything one product dispatch needs; strides in elements, 0 broadcasts. */
export interface MatmulProblem {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  /** Batch strides (elements) of A, B, C; default: dense (M·K, K·N, M·N). */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  /** C = C + op(A)·op(B) (+ bias). */
  accumulate?: boolean;
  variant?: string;
  /**
   * Read B through a texture (subgroup variants on a software adapter, see `useTextures`): true or
   * false forces it where possible / off; default: automatic.
   */
  texB?: boolean;
  /** Read A through a texture (subgroup variants, A not transposed, see `useTextures`): true or false forces it where possible / off; default: automatic. */
  texA?: boolean;
  /**
   * Split K into this many chunks (shared variants, batch 1): partial products into a scratch
   * [S, M, N], then a summing pass that adds bias and C. Default: `chooseSplitK` (hardware only).
   */
  splitK?: number;
}

/** Products with fewer multiply-adds than this run the naive kernel (one small dispatch). */
export const MATMUL_TINY = 32768;

/**
 * Hardware adapters: the fewest 128×128 output tiles for which `shared128` is chosen over the 64×64
 * `shared` kernel (below it, 64×64 tiles keep more of the GPU's multiprocessors busy).
 */
export const SHARED128_MIN_TILES = 128;

/**
 * Hardware adapters: with K ≥ SPLITK_MIN_K, `shared128` in splits from this many 128×128 output
 * tiles (512×512 outputs). H200, GPT-2 small's products with 36–192 such tiles: 1.1–1.6× the 64×64
 * kernel with its own splits (768×768×4096 0.36 → 0.26 ms, 768×2304×4096 0.85 → 0.58 ms).
 */
export const SHARED128_SPLIT_MIN_TILES = 32;

/** Whether this engine can run the subgroup-broadcast register variants. */
export function hasSubgroupVariants(engine: Engine): boolean {
  const info = engine.device.info;
  return engine.device.hasFeature('subgroups') && info.subgroupMinSize >= KM.SG_LANES;
}

/**
 * The variant for a product on this engine's adapter (visible in the kernel name, so the profiler
 * shows the choice). Measured on lavapipe (2 cores), see docs/kernels/matmul.md:
 *   tiny products (< MATMUL_TINY multiply-adds) → naive: one small dispatch, nothing to amortise;
 *   software adapter with subgroups (lavapipe) → subgroup-broadcast register tiles: `sg16x4` for
 *     M ≤ 16 (the weight gradients of d = 16 models: a 32-row tile would idle half its rows; 1.6–2×
 *     faster at 16×48×63000), `sg32x4` below 2^20 multiply-adds or for M ≤ 64 (smaller, faster to
 *     compile), else `sg64x8` (64 rows × 64 columns per workgroup) when N ≥ 48, `sg64x4` for
 *     narrower products (from 2^20 on: a d = 64 model's step 63 → 51 ms, median of 5 alternating
 *     rounds, against the earlier 2^24 threshold); `sg64x16` (64 × 128 per workgroup) for wide, deep
 *     products whose B comes through a texture (nn/tn, N ≥ 256, K ≥ 512): with A and B in textures
 *     the loads no longer dominate and the wider tile spends them on twice the multiply-adds —
 *     1.07–1.19× at 512³, 1024³, 2048×768×768 (nn) and 768×768×2048 (tn), median of 9 alternating
 *     pairs; for nt 0.83× (Bᵀ from a buffer) and 0.98–1.07× (through a texture), below K = 512
 *     mixed;
 *   software adapter without subgroups → `reg4x4`;
 *   hardware adapter → `shared128` (128×128 tiles, 8×8 per thread) when the product has at least
 *     SHARED128_MIN_TILES such tiles, or SHARED128_SPLIT_MIN_TILES and a K long enough for split-K,
 *     else the 64×64 `shared` kernel, or `reg4x4` when the output has fewer than 64·64·4 elements
 *     (too few 64×64 tiles to fill the GPU) and K is short.
 */
export function chooseMatmulVariant(engine: Engine, M: number, N: number, K: number, batch = 1, transB = false): string {
  const macs = M * N * K * batch;
  if (macs < MATMUL_TINY) return 'naive';
  if (engine.device.info.software) {
    if (!hasSubgroupVariants(engine)) return 'reg4x4';
    if (M <= 16) return 'sg16x4';
    if (macs < 1 << 20 || M <= 64) return 'sg32x4';
    if (!transB && N >= 256 && N % 64 === 0 && K >= 512 && useTextures(engine)) return 'sg64x16';
    return N >= 48 ? 'sg64x8' : 'sg64x4';
  }
  // Small outputs: reg4x4, unless K is long enough to split over the GPU (chooseSplitK).
  if (M * N * batch < 64 * 64 * 4) return batch === 1 && K >= SPLITK_MIN_K ? 'shared' : 'reg4x4';
  const tiles128 = Math.ceil(M / 128) * Math.ceil(N / 128) * batch;
  if (tiles128 >= SHARED128_MIN_TILES) return 'shared128';
  // Fewer 128×128 tiles but a long K: split-K (chooseSplitK) fills the GPU with them instead.
  if (batch === 1 && tiles128 >= SHARED128_SPLIT_MIN_TILES && K >= SPLITK_MIN_K) return 'shared128';
  return 'shared';
}

/** Split-K needs at least this long a K (shorter products keep one pass). */
export const SPLITK_MIN_K = 1024;
/** Split-K of the 64×64 `shared` kernel aims at about this many workgroups in all (a couple of waves on a big GPU). */
export const SPLITK_TARGET_GROUPS = 256;
/**
 * Split-K of `shared128` aims at about this many workgroups (several waves of 2 per multiprocessor
 * on a 132-SM GPU, so the last, partial wave costs little), in at most SPLITK_MAX_128 splits.
 */
export const SPLITK_TARGET_GROUPS_128 = 1024;
export const SPLITK_MAX_128 = 8;
/** Each split covers at least this many k's. */
export const SPLITK_MIN_CHUNK = 256;

/**
 * Splits of K for a product on this engine (1 = no split): on hardware adapters, for the shared
 * variants of a single product whose output has too few tiles to fill the GPU and whose K is
 * long — the weight gradients xᵀ·dY (e.g. 128×384 outputs over K = 2048 rows: 12 workgroups of
 * 64×64 for the whole GPU), which would otherwise run one long K loop on a handful of
 * multiprocessors. `shared` aims at SPLITK_TARGET_GROUPS workgroups; `shared128` at
 * SPLITK_TARGET_GROUPS_128 (in at most SPLITK_MAX_128 splits), which also evens out the last wave of
 * mid-sized products (GPT-2's 4096×768 outputs over K = 3072: 1.25×). Each split covers at least
 * SPLITK_MIN_CHUNK k's and the partials must fit one storage binding. Software adapters have 2–16
 * cores that a few workgroups already fill.
 */
export function chooseSplitK(engine: Engine, variant: string, M: number, N: number, K: number, batch = 1): number {
  if (engine.device.info.software || batch !== 1 || K < SPLITK_MIN_K) return 1;
  if (!KM.takesSplitK(variant)) return 1;
  const { tileM, tileN } = KM.matmulGeometry(variant);
  const tiles = Math.ceil(M / tileM) * Math.ceil(N / tileN);
  const byK = Math.floor(K / SPLITK_MIN_CHUNK);
  // The partials [S, M, N] must fit one binding.
  const byMemory = Math.floor(engine.device.limits.maxStorageBufferBindingSize / (M * N * 4));
  let s: number;
  if (variant === 'shared128') {
    // H200, GPT-2 small's products over K = 2304–4096 (ms; splits): 192 tiles 0.84 (1) → 0.67 (4),
    // 0.69–0.73 (6); 144 tiles 0.90 (2) → 0.74 (4), 0.69–0.74 (6), 0.70–0.72 (8); 108 tiles
    // 0.72 (1), 0.57–0.58 (2, 4, 6, 8); 36 tiles 0.63 (1), 0.29 (4), 0.22 (6), 0.26 (8); from 576
    // tiles no split is best (splitting 768 tiles in 2: 0.62 → 0.73).
    s = Math.min(SPLITK_MAX_128, Math.floor(SPLITK_TARGET_GROUPS_128 / tiles));
  } else s = Math.ceil(SPLITK_TARGET_GROUPS / tiles);
  return Math.max(1, Math.min(s, byK, byMemory));
}

/**
 * Encode C = op(A)·op(B) (+ bias) (+ C) for `p.batch` products. Operands are bound whole (each a
 * tensor or a storage region); A, B, C hold batch·stride elements (or one matrix for stride 0).
 * Picks the vec4 specialisations from the shapes and offsets.
 */
export function encodeMatmul(engine: Engine, a: Bindable, b: Bindable, c: Bindable, p: MatmulProblem, bias?: Bindable | null): void {
  const { M, N, K } = p;
  const batch = p.batch ?? 1;
  const transA = !!p.transA;
  const transB = !!p.transB;
  const sA = p.strideA ?? M * K;
  const sB = p.strideB ?? K * N;
  const sC = p.strideC ?? M * N;
  if (M === 0 || N === 0 || batch === 0) return;
  const variant = p.variant ?? chooseMatmulVariant(engine, M, N, K, batch, transB);
  const aligned = (x: Bindable) => storageOf(x).offset % 16 === 0;
  const [tm, tn] = KM.matmulInvocationTile(variant);
  const isReg = /^(reg|sg)\d/.test(variant);
  const contA = transA ? M : K;
  const contB = transB ? K : N;
  // naive and shared read scalars (shared stages scalars into workgroup memory): no vec4 kernels;
  // shared128 reads vec4 along an operand's contiguous dimension where it can.
  const vec = isReg || variant === 'shared128';
  const vecA = vec && K > 0 && contA % 4 === 0 && sA % 4 === 0 && aligned(a) && (!isReg || !transA || tm % 4 === 0);
  const vecB = vec && K > 0 && contB % 4 === 0 && sB % 4 === 0 && aligned(b) && (!isReg || transB || tn % 4 === 0);
  const vecC = vec && N % 4 === 0 && sC % 4 === 0 && aligned(c) && (!bias || aligned(bias)) && (!isReg || tn % 4 === 0);
  // B [K, N] as N/4 × K texels, or Bᵀ [N, K] as K/4 × N texels (rows per batch entry).
  const texRows = (sB === 0 ? 1 : batch) * (transB ? N : K);
  const texB =
    vecB && variant.startsWith('sg') && (p.texB ?? useTextures(engine)) && (transB ? textureFits(engine, b, K, N, sB, texRows) : textureFits(engine, b, N, K, sB, texRows));
  const texARows = (sA === 0 ? 1 : batch) * M;
  const texA = vecA && !transA && variant.startsWith('sg') && tm % 4 === 0 && (p.texA ?? useTextures(engine)) && textureFits(engine, a, K, M, sA, texARows);
  let splits = p.splitK ?? chooseSplitK(engine, variant, M, N, K, batch);
  if (splits > 1 && (batch !== 1 || !KM.takesSplitK(variant)))
    throw new Error(`matmul: splitK needs a single product (batch 1) and a shared variant, got batch ${batch}, ${variant}`);
  // Chunks of whole K tiles (16), so vec4 loads never straddle a chunk's end.
  const kChunk = splits > 1 ? Math.ceil(K / splits / 16) * 16 : Math.max(K, 1);
  if (splits > 1) splits = Math.ceil(K / kChunk);
  const spec = KM.matmulKernel({
    variant,
    transA,
    transB,
    vecA,
    vecB,
    // Split products write their partials to a fresh scratch: vec4 whenever N % 4 = 0.
    vecC: splits > 1 ? N % 4 === 0 : vecC,
    ...(texB ? { texB: true } : {}),
    ...(texA ? { texA: true } : {}),
    ...(variant === 'shared' && engine.device.info.software ? { software: true } : {}),
  });
  const bBind: Bindable = texB ? toTexture(engine, b, transB ? K : N, texRows, TEX_SLOT.matmulB) : b;
  const aBind: Bindable = texA ? toTexture(engine, a, K, texARows, TEX_SLOT.matmulA) : a;
  const geo = KM.matmulGeometry(variant);
  const grid = [Math.ceil(N / geo.tileN), Math.ceil(M / geo.tileM), batch];
  const flags = (bias ? KM.MATMUL_BIAS : 0) | (p.accumulate ? KM.MATMUL_ACCUMULATE : 0);
  const aBytes = (sA === 0 ? 1 : batch) * M * K * 4;
  const bBytes = (sB === 0 ? 1 : batch) * K * N * 4;
  const cBytes = batch * M * N * 4 * (p.accumulate ? 2 : 1);
  if (splits > 1) {
    // Partial products into a scratch [splits, M, N], then one summing pass.
    const part = engine.empty([splits, M, N], 'f32', 'matmul.splitk');
    engine.dispatch(spec, [aBind, bBind, a, part], { M, N, K, sA, sB, sC: M * N, flags: 0, splits, kChunk }, [grid[0], grid[1], splits], {
      flops: 2 * M * N * K,
      bytes: aBytes + bBytes + splits * M * N * 4,
    });
    const v4 = N % 4 === 0 && aligned(c) && (!bias || aligned(bias));
    const w = v4 ? 4 : 1;
    engine.dispatch(KM.splitKSum({ vec4: v4 }), [part, bias ?? part, c], { S: splits, MN: (M * N) / w, N: N / w, flags }, grid1d((M * N) / w, KM.SPLITK_WG), {
      flops: splits * M * N,
      bytes: (splits + (p.accumulate ? 2 : 1)) * M * N * 4 + (bias ? N * 4 : 0),
    });
    part.dispose();
    return;
  }
  // Without a bias the binding is a placeholder (A: read-only, so no writable aliasing).
  engine.dispatch(spec, [aBind, bBind, bias ?? a, c], { M, N, K, sA, sB, sC, flags, splits: 1, kChunk }, grid, {
    flops: 2 * M * N * K * batch,
    bytes: aBytes + bBytes + cBytes + (bias ? N * 4 : 0),
  });
}

/**
 * On software adapters colsum runs in one pass up to this many rows: the dispatch a second pass
 * costs (~0.13 ms on lavapipe) outweighs the parallel partial sums. Measured on lavapipe, one pass vs
 * two (median of 5): 544×256 0.21 vs 0.42 ms, 2048×128 0.42 vs 0.65, 2048×512 1.13 vs 1.50,
 * 4096×3072 9.9 vs 15.4; beyond, two passes win or tie (8192×128 1.55 vs 1.39, 63000×64 5.4 vs 4.5).
 */
export const COLSUM_ONE_PASS_ROWS = 4096;

/**
 * Column sums of X viewed as [R, N]: out[n] (+)= Σ_r X[r, n], deterministic (fixed order, no
 * atomics for a given shape and adapter kind). One pass (one invocation per column, rows in order)
 * when R ≤ COLSUM_CHUNK, or on a software adapter when R ≤ COLSUM_ONE_PASS_ROWS; else per-chunk
 * partial sums then a final pass. `passes` forces one or the other (tests). Chunks hold
 * COLSUM_CHUNK rows, or on hardware adapters about √R (`colsumChunkRows`), so that neither pass
 * runs a long serial loop: with 64-row chunks the needle model's 63 000-row bias gradients ended
 * in ~1 000 dependent additions per column (1.2 ms for 6 colsums on an H200, a tenth of its step).
 * `chunkRows` forces the chunk length (tests).
 */
export function encodeColsum(engine: Engine, x: Bindable, R: number, N: number, out: Bindable, accumulate = false, passes?: 1 | 2, chunkRows?: number): void {
  if (N === 0) return;
  const vec4 = N % 4 === 0 && storageOf(x).offset % 16 === 0 && storageOf(out).offset % 16 === 0;
  const n = vec4 ? N / 4 : N;
  const onePass = passes ? passes === 1 : R <= KM.COLSUM_CHUNK || (engine.device.info.software && R <= COLSUM_ONE_PASS_ROWS);
  const chunk = chunkRows ?? colsumChunkRows(engine, R);
  const chunks = onePass ? 1 : Math.max(2, Math.ceil(R / chunk));
  const groups = Math.ceil(n / KM.COLSUM_WG);
  if (chunks <= 1) {
    engine.dispatch(KM.colsumFinal({ vec4, accumulate }), [x, out], { chunks: R, N: n }, [groups, 1, 1], { flops: R * N, bytes: (R + 1) * N * 4 });
    return;
  }
  if (chunks > engine.device.limits.maxComputeWorkgroupsPerDimension) throw new Error(`colsum: ${R} rows is too many (${chunks} chunks)`);
  const partial = engine.empty([chunks, N], 'f32', 'colsum.partial');
  engine.dispatch(KM.colsumPartial({ vec4 }), [x, partial], { R, N: n, chunk }, [groups, chunks, 1], { flops: R * N, bytes: (R + chunks) * N * 4 });
  engine.dispatch(KM.colsumFinal({ vec4, accumulate }), [partial, out], { chunks, N: n }, [groups, 1, 1], {
    flops: chunks * N,
    bytes: (chunks + 1) * N * 4,
  });
  partial.dispose();
}

/** Rows per chunk of a two-pass colsum: COLSUM_CHUNK, or on hardware adapters at least √R. */
export function colsumChunkRows(engine: Engine, R: number): number {
  return engine.device.info.software ? KM.COLSUM_CHUNK : Math.max(KM.COLSUM_CHUNK, Math.ceil(Math.sqrt(R)));
}

/** Sum over every leading dimension: x [..., N] → [N] (no autograd). */
export function colsum(x: Tensor): Tensor {
  expectDtype(x, 'f32', 'colsum');
  const N = x.dim(-1);
  const out = x.engine.empty([N], 'f32', 'colsum');
  encodeColsum(x.engine, x, x.numel / Math.max(1, N), N, out);
  return out;
}

interface Operand {
  t: Tensor;
  batched: boolean;
  /** Stored rows × cols of one matrix. */
  rows: number;
  cols: number;
}

function operand(t: Tensor, name: string): Operand {
  expectDtype(t, 'f32', 'matmul');
  if (t.shape.length === 2) return { t, batched: false, rows: t.dim(0), cols: t.dim(1) };
  if (t.shape.length === 3) return { t, batched: true, rows: t.dim(1), cols: t.dim(2) };
  throw new Error(`matmul: ${name} "${t.name}" has shape [${t.shape.join(', ')}]; expected 2D or 3D`);
}

/**
 * op(A)·op(B). a: [M, K] (or [K, M] with transA), optionally with a leading batch dimension;
 * b likewise [K, N] (or [N, K] with transB). A 2D operand is broadcast over the other's batch.
 * Output [M, N], or [batch, M, N] when either operand is 3D.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const e = engineOf(a, b);
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const A = operand(a, 'a');
  const B = operand(b, 'b');
  const M = transA ? A.cols : A.rows;
  const K = transA ? A.rows : A.cols;
  const Kb = transB ? B.cols : B.rows;
  const N = transB ? B.rows : B.cols;
  const shapes = `[${a.shape.join(', ')}]${transA ? 'ᵀ' : ''} · [${b.shape.join(', ')}]${transB ? 'ᵀ' : ''}`;
  if (K !== Kb) throw new Error(`matmul: inner dimensions differ in ${shapes}`);
  const batch = A.batched ? a.dim(0) : B.batched ? b.dim(0) : 1;
  if (A.batched && B.batched && b.dim(0) !== batch) throw new Error(`matmul: batch sizes differ in ${shapes}`);
  const batched = A.batched || B.batched;
  const out = e.empty(batched ? [batch, M, N] : [M, N]);
  encodeMatmul(e, a, b, out, {
    M,
    N,
    K,
    batch,
    transA,
    transB,
    strideA: A.batched ? M * K : 0,
    strideB: B.batched ? K * N : 0,
    strideC: M * N,
    ...(opts.variant ? { variant: opts.variant } : {}),
  });
  if (e.recording([a, b]))
    e.record({
      name: 'matmul',
      inputs: [a, b],
      outputs: [out],
      backward: ([g]) => {
        if (!g) return [null, null];
        const p = { M, N, K, batch, transA, transB, aBatched: A.batched, bBatched: B.batched, variant: opts.variant };
        return [a.requiresGrad ? gradA(e, g, a, b, p) : null, b.requiresGrad ? gradB(e, g, a, b, p) : null];
      },
    });
  return out;
}

interface Fwd {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  aBatched: boolean;
  bBatched: boolean;
  variant?: string | undefined;
}

/**
 * Write a (possibly batched) product into `target`. When the target is not batched but the
 * product is (a broadcast operand's gradient), the products go to a temporary [batch, rows·cols]
 * and `colsum` adds them up. `accumulate` adds into `target` instead of overwriting it.
 */
function productInto(
  e: Engine,
  x: Bindable,
  y: Bindable,
  target: Tensor,
  p: MatmulProblem & { batch: number; strideA: number; strideB: number },
  targetBatched: boolean,
  accumulate: boolean,
): void {
  if (targetBatched || p.batch === 1) {
    encodeMatmul(e, x, y, target, { ...p, strideC: p.M * p.N, accumulate });
    return;
  }
  const tmp = e.empty([p.batch, p.M * p.N], 'f32', 'matmul.grad.batch');
  encodeMatmul(e, x, y, tmp, { ...p, strideC: p.M * p.N, accumulate: false });
  encodeColsum(e, tmp, p.batch, p.M * p.N, target, accumulate);
  tmp.dispose();
}

/** dA (in A's stored layout) for C = op(A)·op(B), given dC. */
function gradA(e: Engine, g: Tensor, a: Tensor, b: Tensor, f: Fwd): Tensor | null {
  const { M, N, K, batch } = f;
  const target = gradTarget(a);
  const out = target ?? e.empty(a.shape);
  const variant = f.variant ? { variant: f.variant } : {};
  if (!f.transA) {
    // dA [M, K] = dC [M, N] · op(B)ᵀ
    productInto(
      e,
      g,
      b,
      out,
      { M, N: K, K: N, batch, transA: false, transB: !f.transB, strideA: M * N, strideB: f.bBatched ? K * N : 0, ...variant },
      f.aBatched,
      !!target,
    );
  } else {
    // dA [K, M] = op(B) [K, N] · dCᵀ
    productInto(
      e,
      b,
      g,
      out,
      { M: K, N: M, K: N, batch, transA: f.transB, transB: true, strideA: f.bBatched ? K * N : 0, strideB: M * N, ...variant },
      f.aBatched,
      !!target,
    );
  }
  return target ? null : out;
}

/** dB (in B's stored layout) for C = op(A)·op(B), given dC. */
function gradB(e: Engine, g: Tensor, a: Tensor, b: Tensor, f: Fwd): Tensor | null {
  const { M, N, K, batch } = f;
  const target = gradTarget(b);
  const out = target ?? e.empty(b.shape);
  const variant = f.variant ? { variant: f.variant } : {};
  // A broadcast B with a row-major A: fold the batch into the contraction ([batch·M, K]ᵀ·[batch·M, N]).
  const fold = !f.bBatched && f.aBatched && !f.transA && batch > 1;
  const Mf = fold ? batch * M : M;
  const bt = fold ? 1 : batch;
  if (!f.transB) {
    // dB [K, N] = op(A)ᵀ · dC
    productInto(
      e,
      a,
      g,
      out,
      { M: K, N, K: Mf, batch: bt, transA: !f.transA, transB: false, strideA: f.aBatched ? M * K : 0, strideB: M * N, ...variant },
      f.bBatched,
      !!target,
    );
  } else {
    // dB [N, K] = dCᵀ · op(A)
    productInto(
      e,
      g,
      a,
      out,
      { M: N, N: K, K: Mf, batch: bt, transA: true, transB: f.transA, strideA: M * N, strideB: f.aBatched ? M * K : 0, ...variant },
      f.bBatched,
      !!target,
    );
  }
  return target ? null : out;
}

/**
 * x·W + b. x: [..., in], w: [in, out] (Hugging Face Conv1D layout), bias: [out]. Output [..., out].
 * The bias is added in the matmul epilogue. Backward: dx = dY·Wᵀ, dW = xᵀ·dY (rows of every
 * leading dimension folded into the contraction), db = column sums of dY; dW and db go straight
 * into preallocated parameter gradients (accumulate) when there are some.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null, opts: { variant?: string } = {}): Tensor {
  const e = bias ? engineOf(x, w, bias) : engineOf(x, w);
  expectDtype(x, 'f32', 'linear');
  expectDtype(w, 'f32', 'linear');
  if (w.shape.length !== 2) throw new Error(`linear: weight "${w.name}" has shape [${w.shape.join(', ')}]; expected [in, out]`);
  const [inF, outF] = w.shape as [number, number];
  if (x.dim(-1) !== inF) throw new Error(`linear: input [${x.shape.join(', ')}] does not end in ${inF} (weight [${inF}, ${outF}])`);
  if (bias && (bias.numel !== outF || bias.shape.length !== 1)) throw new Error(`linear: bias [${bias.shape.join(', ')}] is not [${outF}]`);
  const R = x.numel / inF;
  const out = e.empty([...x.shape.slice(0, -1), outF]);
  const variant = opts.variant ? { variant: opts.variant } : {};
  encodeMatmul(e, x, w, out, { M: R, N: outF, K: inF, ...variant }, bias ?? null);
  const inputs = bias ? [x, w, bias] : [x, w];
  if (e.recording(inputs))
    e.record({
      name: 'linear',
      inputs,
      outputs: [out],
      backward: ([g]) => {
        if (!g) return inputs.map(() => null);
        let dx: Tensor | null = null;
        if (x.requiresGrad) {
          dx = e.empty(x.shape);
          encodeMatmul(e, g, w, dx, { M: R, N: inF, K: outF, transB: true, ...variant });
        }
        let dw: Tensor | null = null;
        if (w.requiresGrad) {
          const target = gradTarget(w);
          const dst = target ?? e.empty(w.shape);
          encodeMatmul(e, x, g, dst, { M: inF, N: outF, K: R, transA: true, accumulate: !!target, ...variant });
          dw = target ? null : dst;
        }
        let db: Tensor | null = null;
        if (bias?.requiresGrad) {
          const target = gradTarget(bias);
          const dst = target ?? e.empty(bias.shape);
          encodeColsum(e, g, R, outF, dst, !!target);
          db = target ? null : dst;
        }
        return bias ? [dx, dw, db] : [dx, dw];
      },
    });
  return out;
}
