/**
 * Matrix products with autograd: `matmul` (2D and batched, transposed forms, broadcast operands),
 * `linear` (x·W + b with the Hugging Face Conv1D weight layout [in, out], bias fused in the
 * epilogue), `colsum` (the bias gradient), and the low-level `encodeMatmul` every product goes
 * through (variant from the engine's plan, vec4 specialisation, operands through textures on the software plan, runtime
 * bias/accumulate flags, dispatch cost).
 *
 * Gradients of parameters: when an operand is a leaf whose gradient is already allocated (a
 * parameter with its slot in the gradient arena, or a leaf that received a gradient earlier), the
 * backward writes its product straight into that gradient with accumulate = true (beta = 1) and
 * returns null for it, so autograd adds nothing again. Otherwise it returns the contribution.
 *
 * Precision f16 or bf16 (engine/precision.ts): `matmul` and `linear` cast their operands (and, in
 * the backward, dC / dY) to half copies and run every product on them; half operands take the naive
 * or shared variants (kernels/matmul.ts `halfA` / `halfB`), accumulate in f32 and write f32.
 */
import * as KM from '../../kernels/matmul.ts';
import type { Bindable, Engine } from '../engine.ts';
import { storageOf } from '../engine.ts';
import type { Storage } from '../memory.ts';
import { type HalfType, isHalfType, Tensor } from '../tensor.ts';
import { castHalf } from '../precision.ts';
import { biasGelu, gelu } from './activation.ts';
import { engineOf, expectDtype, gradTarget, grid1d, TEX_SLOT, textureFits, toTexture } from './common.ts';
import { reduceAxisInto } from './reduce.ts';

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
   * Read B through a texture (subgroup variants; default `plan.matmul.textures`): true or
   * false forces it where possible / off; default: automatic.
   */
  texB?: boolean;
  /** Read A through a texture (subgroup variants, A not transposed; default `plan.matmul.textures`): true or false forces it where possible / off; default: automatic. */
  texA?: boolean;
  /**
   * Split K into this many chunks (shared variants): partial products into a scratch
   * [batch · S, M, N], then a summing pass that adds bias and C (a batch needs a dense C).
   * Default: `plan.matmul.splitK` (hardware plan only).
   */
  splitK?: number;
  /**
   * Bias elements per batch entry: entry z adds bias[z·strideBias + n] (a batch of linear layers,
   * the stacked models' biases [G, N]). Default 0: one bias [N] for every entry.
   */
  strideBias?: number;
  /**
   * Also column sums of B (B not transposed, [K, N] per entry, dense for a batch): out[z·N + n]
   * (+)= Σ_k B_z[k, n] — the bias gradient beside a linear layer's dW = xᵀ·dY. The shared variants
   * sum the B tiles they stage (no second pass over B; split products sum their splits' column sums
   * in the split-K pass); other variants run a column sum after the product.
   */
  colsumB?: { out: Bindable; accumulate: boolean };
  /**
   * op(A) = GELU(A) elementwise, applied as A is loaded (the MLP's gelu(z)·W and gelu(z)ᵀ·dY without
   * a stored gelu(z)). Variants naive, shared, shared128 (`KM.OPERAND_HOOK_VARIANTS`; another plan choice
   * becomes `shared`).
   */
  geluA?: boolean;
  /**
   * Multiply each output by GELU'(Z[i]) (Z laid out as C, dense) before the store: the MLP's
   * dz = (dY·Wᵀ)·GELU'(z) in one product. Same variants; no split of K.
   */
  dgelu?: Bindable;
}

export {
  MATMUL_TINY,
  SHARED128_MIN_TILES,
  SHARED128_SPLIT_MIN_TILES,
  SPLITK_MAX_128,
  SPLITK_MIN_CHUNK,
  SPLITK_MIN_K,
  SPLITK_TARGET_GROUPS,
  SPLITK_TARGET_GROUPS_128,
  COLSUM_ONE_PASS_ROWS,
} from '../plan.ts';

/** Whether this engine can run the subgroup-broadcast register variants (`plan.matmul.subgroupVariants`). */
export function hasSubgroupVariants(engine: Engine): boolean {
  return engine.plan.matmul.subgroupVariants;
}

/** The variant for a product on this engine: `plan.matmul.choose` (rules in engine/plan.ts). */
export function chooseMatmulVariant(engine: Engine, M: number, N: number, K: number, batch = 1, transB = false): string {
  return engine.plan.matmul.choose(M, N, K, batch, transB);
}

/** Splits of K for a product on this engine (1 = no split): `plan.matmul.splitK` (rules in engine/plan.ts). */
export function chooseSplitK(engine: Engine, variant: string, M: number, N: number, K: number, batch = 1): number {
  return engine.plan.matmul.splitK(variant, M, N, K, batch);
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
  const sBias = p.strideBias ?? 0;
  if (M === 0 || N === 0 || batch === 0) {
    if (p.colsumB && N > 0 && batch > 0) colsumOfB(engine, b, K, N, batch, p.colsumB);
    return;
  }
  // Half-precision operands (f16 / bf16 tensors, the mixed-precision path) and the GELU operand and
  // epilogue exist in the naive and workgroup-memory kernels only, and the column sums of a half B
  // come only from the tiles a shared variant stages (there is no half colsum pass): a plan choice
  // that cannot do them becomes `shared`.
  const halfA = halfOf(a);
  const halfB = halfOf(b);
  const half = halfA || halfB;
  let variant = p.variant ?? chooseMatmulVariant(engine, M, N, K, batch, transB);
  const hook = half ? 'half-precision operands' : p.geluA || p.dgelu ? 'the GELU operand and epilogue' : null;
  if (hook && !KM.OPERAND_HOOK_VARIANTS.includes(variant)) {
    if (p.variant) throw new Error(`matmul: ${hook} need one of ${KM.OPERAND_HOOK_VARIANTS.join(', ')}; got ${p.variant}`);
    variant = 'shared';
  } else if (halfB && p.colsumB && !p.variant && !KM.takesSplitK(variant)) variant = 'shared';
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
  const vecC = vec && N % 4 === 0 && sC % 4 === 0 && sBias % 4 === 0 && aligned(c) && (!bias || aligned(bias)) && (!p.dgelu || aligned(p.dgelu)) && (!isReg || tn % 4 === 0);
  // B [K, N] as N/4 × K texels, or Bᵀ [N, K] as K/4 × N texels (rows per batch entry).
  const texRows = (sB === 0 ? 1 : batch) * (transB ? N : K);
  // Textures hold f32 texels: half operands stay in storage buffers.
  const texB =
    !half && vecB && variant.startsWith('sg') && (p.texB ?? engine.plan.matmul.textures) && (transB ? textureFits(engine, b, K, N, sB, texRows) : textureFits(engine, b, N, K, sB, texRows));
  const texARows = (sA === 0 ? 1 : batch) * M;
  const texA = !half && vecA && !transA && variant.startsWith('sg') && tm % 4 === 0 && (p.texA ?? engine.plan.matmul.textures) && textureFits(engine, a, K, M, sA, texARows);
  if (p.dgelu && (p.splitK ?? 1) > 1) throw new Error('matmul: the GELU-derivative epilogue needs one split of K');
  // The GELU-derivative epilogue multiplies whole sums: one split.
  let splits = p.dgelu ? 1 : (p.splitK ?? chooseSplitK(engine, variant, M, N, K, batch));
  if (splits > 1 && !KM.takesSplitK(variant)) throw new Error(`matmul: splitK needs a shared variant, got ${variant}`);
  if (splits > 1 && batch > 1 && sC !== M * N) throw new Error(`matmul: splitK of a batch needs a dense C (stride ${M * N}), got stride ${sC}`);
  const cs = p.colsumB;
  if (cs && (transB || (batch > 1 && sB !== K * N))) throw new Error('matmul: colsumB needs B not transposed (and dense over a batch)');
  const fuseColsum = !!cs && KM.takesSplitK(variant) && K > 0;
  if (cs && !fuseColsum && halfB) throw new Error('matmul: the column sums of a half-precision B need a shared variant and K > 0');
  if (cs && !fuseColsum) {
    encodeMatmul(engine, a, b, c, { ...p, variant, colsumB: undefined }, bias);
    colsumOfB(engine, b, K, N, batch, cs);
    return;
  }
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
    ...(variant === 'shared' && engine.plan.matmul.softwareShared ? { software: true } : {}),
    ...(fuseColsum ? { colsumB: true } : {}),
    ...(halfA ? { halfA } : {}),
    ...(halfB ? { halfB } : {}),
    ...(p.geluA ? { geluA: true } : {}),
    ...(p.dgelu ? { dgeluC: true } : {}),
  });
  const bBind: Bindable = texB ? toTexture(engine, b, transB ? K : N, texRows, TEX_SLOT.matmulB) : b;
  const aBind: Bindable = texA ? toTexture(engine, a, K, texARows, TEX_SLOT.matmulA) : a;
  const geo = KM.matmulGeometry(variant);
  const grid = [Math.ceil(N / geo.tileN), Math.ceil(M / geo.tileM), batch];
  const flags = (bias ? KM.MATMUL_BIAS : 0) | (p.accumulate ? KM.MATMUL_ACCUMULATE : 0);
  const aBytes = (sA === 0 ? 1 : batch) * M * K * (halfA ? 2 : 4);
  const bBytes = (sB === 0 ? 1 : batch) * K * N * (halfB ? 2 : 4);
  // Without a bias the bias binding is a placeholder: an f32 operand, else a small f32 buffer.
  const placeholder: Bindable = bias ?? (!halfA ? a : !halfB ? b : halfPlaceholder(engine));
  const cBytes = batch * M * N * 4 * (p.accumulate ? 2 : 1);
  if (splits > 1) {
    // Partial products into a scratch [batch · splits, M, N] (workgroup z = entry · splits + split),
    // then one summing pass over every entry.
    const part = engine.empty([batch * splits, M, N], 'f32', 'matmul.splitk');
    // colsumB: each split's column sums into [splits, N], summed with the partials below.
    const csPart = fuseColsum ? engine.empty([batch * splits, N], 'f32', 'matmul.splitk.colsum') : null;
    engine.dispatch(spec, [aBind, bBind, placeholder, part, ...(csPart ? [csPart] : [])], { M, N, K, sA, sB, sC: M * N, flags: 0, splits, kChunk, sBias: 0 }, [grid[0], grid[1], batch * splits], {
      flops: 2 * M * N * K * batch + (csPart ? K * N : 0),
      bytes: aBytes + bBytes + batch * splits * M * N * 4 + (csPart ? splits * N * 4 : 0),
    });
    const v4 = N % 4 === 0 && sBias % 4 === 0 && aligned(c) && (!bias || aligned(bias)) && (!cs || aligned(cs.out));
    const w = v4 ? 4 : 1;
    const csFlags = cs?.accumulate ? KM.MATMUL_COLSUM_ACCUMULATE : 0;
    engine.dispatch(
      KM.splitKSum({ vec4: v4, colsum: !!csPart }),
      [part, bias ?? part, c, ...(csPart ? [csPart, cs!.out] : [])],
      { S: splits, MN: (M * N) / w, N: N / w, flags: flags | csFlags, B: batch, sBias: sBias / w },
      grid1d((batch * M * N + (csPart ? batch * N : 0)) / w, KM.SPLITK_WG),
      {
        flops: batch * splits * M * N + (csPart ? batch * splits * N : 0),
        bytes: batch * (splits + (p.accumulate ? 2 : 1)) * M * N * 4 + (bias ? (sBias ? batch : 1) * N * 4 : 0) + (csPart ? batch * (splits + (cs!.accumulate ? 2 : 1)) * N * 4 : 0),
      },
    );
    part.dispose();
    csPart?.dispose();
    return;
  }
  // Without a bias the binding is a placeholder (A: read-only, so no writable aliasing).
  const csFlags = cs?.accumulate ? KM.MATMUL_COLSUM_ACCUMULATE : 0;
  engine.dispatch(spec, [aBind, bBind, placeholder, c, ...(p.dgelu ? [p.dgelu] : []), ...(fuseColsum ? [cs!.out] : [])], { M, N, K, sA, sB, sC, flags: flags | csFlags, splits: 1, kChunk, sBias }, grid, {
    flops: 2 * M * N * K * batch + (fuseColsum ? batch * K * N : 0),
    bytes: aBytes + bBytes + cBytes + (p.dgelu ? batch * M * N * 4 : 0) + (bias ? (sBias ? batch : 1) * N * 4 : 0) + (fuseColsum ? batch * N * 4 * (cs!.accumulate ? 2 : 1) : 0),
  });
}

/** The 2-byte float type an operand is stored in (f16, bf16), or undefined for f32. */
function halfOf(x: Bindable): HalfType | undefined {
  return x instanceof Tensor && isHalfType(x.dtype) ? x.dtype : undefined;
}

const placeholders = new WeakMap<Engine, Storage>();

/** A 16-byte f32 buffer bound where a kernel declares a bias it does not read and both operands are f16. */
function halfPlaceholder(engine: Engine): Storage {
  let s = placeholders.get(engine);
  if (!s) {
    s = engine.createStorage('matmul.bias_placeholder', 16);
    placeholders.set(engine, s);
  }
  return s;
}

/** out[z·N + n] (+)= Σ_k B_z[k, n] for a batch of dense [K, N] B's: `encodeColsum`, or per entry a grouped reduction. */
function colsumOfB(engine: Engine, b: Bindable, K: number, N: number, batch: number, cs: { out: Bindable; accumulate: boolean }): void {
  if (batch === 1) encodeColsum(engine, b, K, N, cs.out, cs.accumulate);
  else reduceAxisInto(engine, b, cs.out, batch, K, N, { accumulate: cs.accumulate });
}

/**
 * Column sums of X viewed as [R, N]: out[n] (+)= Σ_r X[r, n], deterministic (fixed order, no
 * atomics for a given shape and adapter kind). One pass (one invocation per column, rows in order)
 * where the plan says (`plan.matmul.colsumOnePass`: R ≤ COLSUM_CHUNK, or on the software plan
 * R ≤ COLSUM_ONE_PASS_ROWS); else per-chunk partial sums then a final pass. `passes` forces one or
 * the other (tests). Chunks hold `plan.matmul.colsumChunkRows(R)` rows (COLSUM_CHUNK, or on the
 * hardware plan about √R, so that neither pass runs a long serial loop: with 64-row chunks the
 * needle model's 63 000-row bias gradients ended in ~1 000 dependent additions per column, slow on
 * an H200: docs/performance.md, "On a real GPU", Reductions). `chunkRows` forces the chunk length
 * (tests).
 */
export function encodeColsum(engine: Engine, x: Bindable, R: number, N: number, out: Bindable, accumulate = false, passes?: 1 | 2, chunkRows?: number): void {
  if (N === 0) return;
  const vec4 = N % 4 === 0 && storageOf(x).offset % 16 === 0 && storageOf(out).offset % 16 === 0;
  const n = vec4 ? N / 4 : N;
  const onePass = passes ? passes === 1 : engine.plan.matmul.colsumOnePass(R);
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

/** Rows per chunk of a two-pass colsum: `plan.matmul.colsumChunkRows` (COLSUM_CHUNK, or on the hardware plan at least √R). */
export function colsumChunkRows(engine: Engine, R: number): number {
  return engine.plan.matmul.colsumChunkRows(R);
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
  // Precision f16: the product reads half copies of the operands (and the backward a half dC).
  const recording = e.recording([a, b]);
  const ah = halfOperand(a);
  const bh = halfOperand(b);
  encodeMatmul(e, ah, bh, out, {
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
  // The backward reads A's half copy only for dB and B's only for dA.
  dropHalf(a, ah, recording && b.requiresGrad);
  dropHalf(b, bh, recording && a.requiresGrad);
  if (recording)
    e.record({
      name: 'matmul',
      inputs: [a, b],
      outputs: [out],
      backward: ([g]) => {
        if (!g) return [null, null];
        const p = { M, N, K, batch, transA, transB, aBatched: A.batched, bBatched: B.batched, variant: opts.variant };
        const gh = halfGradient(g);
        const grads: [Tensor | null, Tensor | null] = [a.requiresGrad ? gradA(e, gh, a, bh, p) : null, b.requiresGrad ? gradB(e, gh, ah, b, p) : null];
        if (gh !== g) gh.dispose();
        return grads;
      },
    });
  return out;
}

/** With a half precision (f16, bf16): a half copy of an f32 operand (weights and activations: an overflow is only counted). */
function halfOperand(x: Tensor): Tensor {
  return x.engine.precision !== 'f32' && x.dtype === 'f32' ? castHalf(x, 'activation') : x;
}

/** With a half precision: a half copy of an output gradient (an f16 overflow skips the step, engine/precision.ts). */
function halfGradient(g: Tensor): Tensor {
  return g.engine.precision !== 'f32' && g.dtype === 'f32' ? castHalf(g, 'gradient') : g;
}

/** Free a half copy `h` of `x` (when it is one) unless the backward will read it. */
function dropHalf(x: Tensor, h: Tensor, needed: boolean): void {
  if (h !== x && !needed) h.dispose();
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

/** dA (in A's stored layout) for C = op(A)·op(B), given dC (`b`: B or its half copy). */
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

/** dB (in B's stored layout) for C = op(A)·op(B), given dC (`a`: A or its half copy). */
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
 * leading dimension folded into the contraction), db = column sums of dY (on the shared variants
 * inside the dW product: `colsumB`); dW and db go straight into preallocated parameter gradients
 * (accumulate) when there are some.
 *
 * A batch of G layers (stacked models): w [G, in, out], bias [G, out], and x's rows split into G
 * equal runs, run g through layer g — one batched product per pass, each entry with its own bias.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null, opts: { variant?: string } = {}): Tensor {
  return linearOf(x, w, bias ?? null, opts, false);
}

/**
 * gelu(z)·W + b without gelu(z): `linear` whose products read GELU of z as they load it (forward
 * and dW = gelu(z)ᵀ·dY) and whose dz = (dY·Wᵀ)·GELU'(z) comes out of the dx product's epilogue.
 * Shapes as `linear`. Its products run on the naive or workgroup-memory kernels (others become
 * `shared`; `KM.OPERAND_HOOK_VARIANTS`).
 */
export function geluLinear(z: Tensor, w: Tensor, bias?: Tensor | null, opts: { variant?: string } = {}): Tensor {
  return linearOf(z, w, bias ?? null, opts, true);
}

function linearOf(x: Tensor, w: Tensor, bias: Tensor | null, opts: { variant?: string }, geluX: boolean): Tensor {
  const op = geluX ? 'geluLinear' : 'linear';
  const e = bias ? engineOf(x, w, bias) : engineOf(x, w);
  expectDtype(x, 'f32', op);
  expectDtype(w, 'f32', op);
  if (w.shape.length !== 2 && w.shape.length !== 3) throw new Error(`${op}: weight "${w.name}" has shape [${w.shape.join(', ')}]; expected [in, out] or [layers, in, out]`);
  const G = w.shape.length === 3 ? w.dim(0) : 1;
  const [inF, outF] = w.shape.slice(-2) as [number, number];
  if (x.dim(-1) !== inF) throw new Error(`${op}: input [${x.shape.join(', ')}] does not end in ${inF} (weight [${w.shape.join(', ')}])`);
  if (bias && (bias.numel !== G * outF || bias.shape.length !== (w.shape.length === 3 ? 2 : 1)))
    throw new Error(`${op}: bias [${bias.shape.join(', ')}] is not [${w.shape.length === 3 ? `${G}, ` : ''}${outF}]`);
  const R = x.numel / inF;
  if (R % G !== 0) throw new Error(`${op}: ${R} rows of [${x.shape.join(', ')}] do not split into ${G} layers`);
  const Rg = R / G;
  const out = e.empty([...x.shape.slice(0, -1), outF]);
  const variant = opts.variant ? { variant: opts.variant } : {};
  // One product, or one per layer: entry g's rows, weight and bias.
  const batched = (Mb: number, Nb: number, Kb: number, sA: number, sB: number) => (G > 1 ? { batch: G, strideA: sA, strideB: sB, strideC: Mb * Nb } : {});
  // Precision f16: the products read half copies of x and W (and the backward a half dY).
  const inputs = bias ? [x, w, bias] : [x, w];
  const recording = e.recording(inputs);
  const xh = halfOperand(x);
  const wh = halfOperand(w);
  const geluA = geluX ? { geluA: true } : {};
  encodeMatmul(e, xh, wh, out, { M: Rg, N: outF, K: inF, ...batched(Rg, outF, inF, Rg * inF, inF * outF), ...(G > 1 ? { strideBias: outF } : {}), ...variant, ...geluA }, bias ?? null);
  // The backward reads x's half copy only for dW and W's only for dx.
  dropHalf(x, xh, recording && w.requiresGrad);
  dropHalf(w, wh, recording && x.requiresGrad);
  if (recording)
    e.record({
      name: op,
      inputs,
      outputs: [out],
      backward: ([g]) => {
        if (!g) return inputs.map(() => null);
        const gh = halfGradient(g);
        let dx: Tensor | null = null;
        if (x.requiresGrad) {
          dx = e.empty(x.shape);
          // geluLinear: dz = (dY·Wᵀ)·GELU'(z), the derivative read from z itself (f32) as dz is stored.
          encodeMatmul(e, gh, wh, dx, { M: Rg, N: inF, K: outF, transB: true, ...batched(Rg, inF, outF, Rg * outF, inF * outF), ...variant, ...(geluX ? { dgelu: x } : {}) });
        }
        let db: Tensor | null = null;
        let dbTarget: Tensor | null = null;
        if (bias?.requiresGrad) {
          dbTarget = gradTarget(bias);
          db = dbTarget ?? e.empty(bias.shape);
        }
        // db = column sums of dY (per layer), fused into the dW product where the variant can (encodeMatmul's colsumB).
        const colsumB = db ? { colsumB: { out: db, accumulate: !!dbTarget } } : {};
        let dw: Tensor | null = null;
        if (w.requiresGrad) {
          const target = gradTarget(w);
          const dst = target ?? e.empty(w.shape);
          encodeMatmul(e, xh, gh, dst, { M: inF, N: outF, K: Rg, transA: true, accumulate: !!target, ...batched(inF, outF, Rg, Rg * inF, Rg * outF), ...variant, ...colsumB, ...geluA });
          dw = target ? null : dst;
        } else if (db) colsumOfB(e, g, Rg, outF, G, { out: db, accumulate: !!dbTarget });
        if (gh !== g) gh.dispose();
        if (dbTarget) db = null;
        return bias ? [dx, dw, db] : [dx, dw];
      },
    });
  return out;
}

/**
 * gelu(x·W + b): the MLP's first layer (shapes and the stacked form as `linear`); the models reach it
 * through `linearGeluLinear` on the software plan. Two ways to the same forward sum (fl(x·W) + b,
 * then GELU):
 * - where the plan's weight-gradient product sums dY's columns inside its own tiles (the shared
 *   variants: the hardware plan), `gelu(linear(x, W, b))`: the bias in
 *   the product's epilogue, its gradient inside dW's product straight into the parameter gradient,
 *   GELU's backward elementwise (2 dispatches fewer per layer than the other way);
 * - elsewhere (the software plan's register and subgroup tiles, which sum columns in a pass of their
 *   own), `biasGelu(linear(x, W), b)`: the bias in the fused bias + GELU kernel, its gradient from
 *   the GELU backward's chunk partials (no extra pass over dY), as every lavapipe result in
 *   docs/results.md was measured.
 */
export function linearGelu(x: Tensor, w: Tensor, bias: Tensor, opts: { variant?: string } = {}): Tensor {
  const e = engineOf(x, w, bias);
  const G = w.shape.length === 3 ? w.dim(0) : 1;
  const [inF, outF] = w.shape.slice(-2) as [number, number];
  const rows = x.numel / Math.max(1, inF) / G;
  // dW = xᵀ·dY as linear's backward encodes it: [in, out] over K = rows (per layer of a stack).
  const dwVariant = opts.variant ?? chooseMatmulVariant(e, inF, outF, rows, G, false);
  return KM.takesSplitK(dwVariant) ? gelu(linear(x, w, bias, opts)) : biasGelu(linear(x, w, null, opts), bias, { groups: G });
}

/**
 * The MLP, gelu(x·W1 + b1)·W2 + b2 (shapes as `linear`, single or stacked), in the plan's way
 * (`plan.matmul.geluInProducts`, KINDLING_GELU_IN_PRODUCTS):
 * - on (the hardware plan's default): `geluLinear(linear(x, W1, b1), W2, b2)`: GELU inside the second product's loads
 *   and its derivative in the backward's dY·W2ᵀ epilogue: no GELU pass either way, no stored
 *   gelu(z), b1's gradient inside dW1's product (2 dispatches fewer per MLP than `linearGelu`'s
 *   way there, and one [rows, 4d] activation less);
 * - off (the software plan's): `linear(linearGelu(x, W1, b1), W2, b2)`, the fused bias + GELU kernel, as every
 *   lavapipe result in docs/results.md was measured.
 */
export function linearGeluLinear(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor): Tensor {
  const e = engineOf(x, w1, b1, w2, b2);
  if (e.plan.matmul.geluInProducts) return geluLinear(linear(x, w1, b1), w2, b2);
  return linear(linearGelu(x, w1, b1), w2, b2);
}
