/**
 * The kernel plan: every choice of kernel variant the ops make, decided in one place from what the
 * adapter is (its kind, subgroup sizes, limits, features) and the engine's options.
 *
 *   const plan = planFor(device.info, device.limits, device.features, { planAs: 'hardware' });
 *   plan.matmul.choose(M, N, K, batch, transB)   // 'sg64x8', 'shared128', ...
 *   plan.matmul.splitK('shared128', M, N, K)     // splits of K (1 = none)
 *   plan.attention.choose(hd, 'bwd', { fast, dropout })
 *   describePlan(plan)                           // the plan as text (`kindling device`, the profiler)
 *
 * `plan.kind` is the plan the engine follows: 'software' (tuned on lavapipe: register/subgroup tiles,
 * textures, few long invocations) or 'hardware' (tuned on an H200: workgroup-memory tiles, split-K,
 * tiled attention, wide reductions). It is the adapter's kind unless `planAs` / KINDLING_PLAN_AS
 * says otherwise, which lets a CPU-only machine run the GPU paths; `adapterSoftware` (and the
 * device's `info.software`) always says what the adapter really is. A few choices follow the
 * adapter rather than the plan: those that exist because the adapter is (or is not) running on the
 * CPU's own cores (waits) or that need a feature (subgroup kernels). Each field says which.
 *
 * Everything here is a pure function of its inputs: no device, no environment except the
 * documented defaults of `PlanOptions` read by `planFor`'s caller (engine/device.ts).
 */
import * as KA from '../kernels/attention.ts';
import * as KM from '../kernels/matmul.ts';

export type PlanKind = 'software' | 'hardware';
export type MatmulPass = 'fwd' | 'bwd';
export type AttentionKernel = 'ref' | 'row' | 'tiled' | 'sg' | 'block';
export type RowKernel = 'thread' | 'wg';
export type ReduceKernel = 'axis' | 'rows';

/** What the plan needs to know about the adapter (a subset of engine/device.ts's AdapterSummary). */
export interface PlanAdapter {
  /** The adapter is a CPU implementation (lavapipe, SwiftShader, WARP). */
  software: boolean;
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

/** The device limits the plan reads. */
export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  /** Bytes of workgroup memory a workgroup may use (the attention block kernels' tiles; WebGPU's default 16 384 when absent). */
  maxComputeWorkgroupStorageSize?: number;
}

export interface PlanOptions {
  /** Plan as for this kind of adapter (default: the adapter's kind). */
  planAs?: PlanKind;
  /**
   * Read big operands through textures where the software plan would (default true; the device
   * passes KINDLING_MATMUL_TEXTURE !== '0'). Never on the hardware plan.
   */
  textures?: boolean;
  /**
   * The MLP's GELU inside its products (`matmul.geluInProducts`; default: on the hardware plan
   * only; the device passes KINDLING_GELU_IN_PRODUCTS=0|1). Off on the hardware plan gives the MLP of
   * the software plan's shape (the fused bias + GELU kernel) on the hardware kernels: the A/B of
   * `step.bench.ts --gelu-ab`.
   */
  geluInProducts?: boolean;
  /**
   * Attention on the block kernels (`attention.block`; default: on the hardware plan only; the device
   * passes KINDLING_BLOCK_ATTENTION=0|1): where they run (hd a multiple of 64, no dropout, tiles that
   * fit the workgroup memory), `choose` returns 'block' for both passes. Off gives the kernels
   * measured on the H200 before them (tiled forward, sg backward): the A/B of `step.bench.ts --attention-ab`.
   */
  blockAttention?: boolean;
}

export interface ChunkPlan {
  nChunks: number;
  chunkLen: number;
}

/** Products with fewer multiply-adds than this run the naive kernel (one small dispatch). */
export const MATMUL_TINY = 32768;
/**
 * Hardware plan: the fewest 128×128 output tiles for which `shared128` is chosen over the 64×64
 * `shared` kernel (below it, 64×64 tiles keep more of the GPU's multiprocessors busy).
 */
export const SHARED128_MIN_TILES = 128;
/**
 * Hardware plan: with K ≥ SPLITK_MIN_K, `shared128` in splits from this many 128×128 output
 * tiles (512×512 outputs): measured faster than the 64×64 kernel with its own splits for GPT-2
 * small's products of 36–192 such tiles on an H200 (docs/kernels/matmul.md, "The GPU tiles").
 */
export const SHARED128_SPLIT_MIN_TILES = 32;
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
 * Batched products (the weight gradients of stacked models, src/model/stacked.ts) split `shared`
 * into chunks of at most this many k's, beside SPLITK_TARGET_GROUPS over the whole batch: a
 * stack of 16 needle models has 16 one-tile products over K = 63 000, which SPLITK_TARGET_GROUPS
 * alone would cut into 16 chunks of ~3 900. Unmeasured on a GPU (docs/performance.md, stacked).
 */
export const SPLITK_BATCH_MAX_CHUNK = 1024;
/**
 * Software plan: colsum runs in one pass up to this many rows: the dispatch a second pass costs on
 * lavapipe outweighs the parallel partial sums; beyond, two passes measured faster or equal
 * (docs/performance.md, "What the dispatch and texture changes bought").
 */
export const COLSUM_ONE_PASS_ROWS = 4096;
/**
 * Hardware plan: row kernels (cross-entropy, argmax and accuracy rows of V logits; LayerNorm rows of
 * d features) give each row one invocation instead of a workgroup when rows are at most this wide
 * and at least ROW_THREAD_MIN_ROWS of them: measured on the H200 for the cross-entropy rows; for
 * LayerNorm (the downstream models' d = 16 over 36 000–63 000 rows, ×G stacked) unmeasured so far,
 * so `benchmarks/stacked.bench.ts` times the largest stack with 'wg' beside it.
 */
export const ROW_THREAD_MAX_WIDTH = 64;
export const ROW_THREAD_MIN_ROWS = 16384;

/**
 * Software plan: LayerNorm's dγ, dβ are summed in one pass (an invocation per column over all
 * rows) up to this many rows: a second dispatch costs more than the chunked partial sums save;
 * beyond, two passes win (lavapipe, one pass vs two: docs/performance.md, end-to-end step).
 */
export const LN_PARAMS_ONE_PASS_ROWS = 4096;
/**
 * Hardware plan: the smallest head dim whose attention backward runs on the sg kernels (split so a
 * lane holds 16 channels). Measured on an H200 at GPT-2 small's shape (hd 64): the sg split-4
 * backward beat every tiled wg × kb configuration, while the forward stays fastest tiled (numbers in
 * docs/performance.md, "On a real GPU", Attention). Not measured below hd 64 or with dropout, so
 * those keep the tiled kernels.
 */
export const HW_SG_BACKWARD_MIN_HD = 64;
/** Software plan without subgroups: the largest head dim attention runs on the row kernels. */
export const ROW_MAX_HD = 32;

/**
 * Software plan: the sg attention backward runs as one fused kernel (dq, dk and dv; one workgroup per
 * (b, h) covering every row) up to this sequence length and head dim, with subgroups of 8 and one
 * lane per row. Measured at hd 4 on lavapipe (docs/performance.md, attention at head dim 4).
 */
export const SW_FUSED_BACKWARD_MAX_T = 64;
export const SW_FUSED_BACKWARD_MAX_HD = 4;

export interface MatmulPlan {
  /** Every variant `choose` can return on this plan (tests run each against float64). */
  readonly variants: readonly string[];
  /** The subgroup-broadcast register variants (sg…) can run: subgroups with ≥ KM.SG_LANES lanes (an adapter fact). */
  readonly subgroupVariants: boolean;
  /** Whether `splitK` can return more than 1 (for the variants `KM.takesSplitK` accepts). */
  readonly splitsK: boolean;
  /** Default for reading A/B through textures (sg variants only; software plan). */
  readonly textures: boolean;
  /** Compile the `shared` kernel in its software shape (loops lavapipe would unroll kept opaque). */
  readonly softwareShared: boolean;
  /**
   * The MLP's GELU inside its products (`linearGeluLinear`): the second product reads gelu(z) as it
   * loads z and the backward's dY·Wᵀ multiplies by GELU'(z) as it stores, so neither GELU pass nor the
   * [rows, 4d] activation gelu(z) exists (hardware plan: the workgroup-memory variants, which these
   * products then take). The software plan keeps its register and subgroup tiles and the fused
   * bias + GELU kernel (its lavapipe results stay bitwise as measured).
   */
  readonly geluInProducts: boolean;
  /** The variant for a product (visible in the kernel name, so the profiler shows the choice). */
  choose(M: number, N: number, K: number, batch?: number, transB?: boolean): string;
  /** Splits of K (1 = no split). */
  splitK(variant: string, M: number, N: number, K: number, batch?: number): number;
  /** Whether colsum over R rows runs in one pass. */
  colsumOnePass(R: number): boolean;
  /** Rows per chunk of a two-pass colsum. */
  colsumChunkRows(R: number): number;
}

export interface AttentionPlan {
  /** The adapter's subgroup size when the subgroups feature is on and the size fixed, else 0 (an adapter fact: the sg kernels need it). */
  readonly subgroupSize: number;
  /** The kernels this engine can run ('sg' needs `subgroupSize`). */
  readonly runnable: readonly AttentionKernel[];
  /** Every kernel `choose` can return on this plan. */
  readonly variants: readonly AttentionKernel[];
  /** Default for reading qkv through a texture (sg kernels; software plan). */
  readonly textures: boolean;
  /** sg kernels: most vec4s of a row per lane before a row is split over more lanes. */
  readonly sgVec4PerLane: number;
  /** 'auto': the kernel for a head dim and pass; `fast` = hd % 4 = 0 and the tensors are 16-byte aligned. */
  choose(hd: number, pass: MatmulPass, o: { fast: boolean; dropout: boolean }): AttentionKernel;
  /** sg kernels: lanes per row (a power of two) for head dim hd in subgroups of `sg` lanes. */
  sgSplit(hd: number, sg: number): number;
  /** sg kernels without split: rows per lane. */
  sgRowsPerLane(T: number, hd: number, pass: MatmulPass): number;
  /**
   * sg backward: rows per lane of the fused kernel (dq, dk, dv in one dispatch, a workgroup per (b, h)
   * covering all T rows) when the plan runs the backward that way, else 0 (separate dq and dkv kernels).
   */
  sgFusedBackwardRows(T: number, hd: number, sg: number, split: number): number;
  /** Whether `choose` takes the block kernels where they run (PlanOptions.blockAttention). */
  readonly block: boolean;
  /**
   * Block kernels: the tiles (own rows × streamed rows per block) of a pass at head dim hd, the
   * largest of BLOCK_TILES that fits the workgroup memory, or null where none fits or hd % 64 ≠ 0.
   */
  blockTiles(kernel: BlockKernel, hd: number): KA.BlockOptions | null;
}

export interface KernelPlan {
  /** The plan followed: the adapter's kind unless `planAs` / KINDLING_PLAN_AS overrides it. */
  readonly kind: PlanKind;
  /** The adapter is a software one, whatever the plan (device.info.software). */
  readonly adapterSoftware: boolean;
  readonly matmul: MatmulPlan;
  readonly attention: AttentionPlan;
  readonly layernorm: {
    /** 'thread' (an invocation per row) or 'wg' (a workgroup per row) for `rows` rows of `d` features. */
    choose(d: number, rows: number): RowKernel;
    /** dγ, dβ over `rows` rows of `d` columns: one pass or chunks. */
    paramChunks(d: number, rows: number): ChunkPlan;
  };
  /** Cross-entropy, argmax and accuracy row kernels. */
  readonly rows: { choose(V: number, N: number): RowKernel };
  readonly reduce: {
    /** Invocations a reduction should expose before it is split into chunks (two stages). */
    readonly targetThreads: number;
    /** Most invocations per region in sumOfSquares' first stage. */
    readonly sumsqThreads: number;
    /** Whether chunks are capped at ⌈√n⌉ (the final pass then sums as many chunks as each chunk has rows). */
    readonly sqrtCap: boolean;
    readonly variants: readonly ReduceKernel[];
    /** How to split a reduction of length n over `outputs` independent sums. */
    chunks(outputs: number, n: number, minChunk?: number): ChunkPlan;
    /** 'rows' (a workgroup per output) or 'axis' (an invocation per output). */
    choose(inner: number, n: number): ReduceKernel;
  };
  /** Bias (+ GELU) forward: rows split over at most this many workgroups along y. */
  readonly activation: { readonly maxRowGroups: number };
  readonly adamw: {
    /** Most workgroups of the gradient norm's first stage per chunk. */
    readonly normGroups: number;
    /** Items per invocation of the AdamW kernel. */
    readonly unroll: number;
  };
  /**
   * Waits spin (Dawn's own polling) instead of being throttled (engine/wait.ts); KINDLING_SPIN_WAIT
   * still overrides. Follows the adapter, not the plan: the throttle exists because a software
   * adapter's workers share the CPU's cores with the waiting thread, which stays true under
   * `planAs: 'hardware'`.
   */
  readonly wait: { readonly spin: boolean };
}

/** Register / subgroup / workgroup-memory matmul variants the plan of this kind can choose. */
function matmulVariants(kind: PlanKind, sg: boolean, textures: boolean): string[] {
  if (kind === 'hardware') return ['naive', 'reg4x4', 'shared', 'shared128'];
  if (!sg) return ['naive', 'reg4x4'];
  return ['naive', 'sg16x4', 'sg32x4', ...(textures ? ['sg64x16'] : []), 'sg64x8', 'sg64x4'];
}

function matmulPlan(kind: PlanKind, subgroupVariants: boolean, textures: boolean, limits: PlanLimits, geluInProducts?: boolean): MatmulPlan {
  const sw = kind === 'software';
  /**
   * Measured on lavapipe (2 cores); the numbers are in docs/kernels/matmul.md, "Selection":
   *   tiny products (< MATMUL_TINY multiply-adds) → naive: one small dispatch, nothing to amortise;
   *   software plan with subgroups (lavapipe) → subgroup-broadcast register tiles: `sg16x4` for
   *     M ≤ 16 (the weight gradients of d = 16 models: a 32-row tile would idle half its rows, and
   *     the 16-row tile measured faster), `sg32x4` below 2^20 multiply-adds, for M ≤ 32, or for
   *     M ≤ 64 with N < 96 (smaller, faster to compile; the weight gradients of d = 48–64 models
   *     with N ≥ 96 measured faster with the 64-row tiles), else `sg64x8` (64 rows × 64 columns per workgroup) when N ≥ 48, `sg64x4`
   *     for narrower products (from 2^20 on: small models' steps measured faster than with the
   *     earlier 2^24 threshold); `sg64x16` (64 × 128 per workgroup) for wide, deep products whose B
   *     comes through a texture (nn/tn, N ≥ 256, K ≥ 512): with A and B in textures the loads no
   *     longer dominate and the wider tile spends them on twice the multiply-adds — faster for those
   *     nn and tn products; not for nt (slower from a buffer, no clear gain through a texture), and
   *     mixed below K = 512;
   *   software plan without subgroups → `reg4x4`;
   *   hardware plan → `shared128` (128×128 tiles, 8×8 per thread) when the product has at least
   *     SHARED128_MIN_TILES such tiles, or SHARED128_SPLIT_MIN_TILES and a K long enough for split-K,
   *     else the 64×64 `shared` kernel, or `reg4x4` when the output has fewer than 64·64·4 elements
   *     (too few 64×64 tiles to fill the GPU) and K is short.
   */
  const choose = (M: number, N: number, K: number, batch = 1, transB = false): string => {
    const macs = M * N * K * batch;
    if (macs < MATMUL_TINY) return 'naive';
    if (sw) {
      if (!subgroupVariants) return 'reg4x4';
      if (M <= 16) return 'sg16x4';
      if (macs < 1 << 20 || M <= 32 || (M <= 64 && N < 96)) return 'sg32x4';
      if (!transB && N >= 256 && N % 64 === 0 && K >= 512 && textures) return 'sg64x16';
      return N >= 48 ? 'sg64x8' : 'sg64x4';
    }
    // Small outputs: reg4x4, unless K is long enough to split over the GPU (splitK).
    if (M * N * batch < 64 * 64 * 4) return K >= SPLITK_MIN_K ? 'shared' : 'reg4x4';
    const tiles128 = Math.ceil(M / 128) * Math.ceil(N / 128) * batch;
    if (tiles128 >= SHARED128_MIN_TILES) return 'shared128';
    // Fewer 128×128 tiles but a long K: split-K fills the GPU with them instead.
    if (tiles128 >= SHARED128_SPLIT_MIN_TILES && K >= SPLITK_MIN_K) return 'shared128';
    return 'shared';
  };
  /**
   * Hardware plan, the shared variants of a product (or batch of products) whose output has too few tiles to fill
   * the GPU and whose K is long — the weight gradients xᵀ·dY (e.g. 128×384 outputs over K = 2048
   * rows: 12 workgroups of 64×64 for the whole GPU), which would otherwise run one long K loop on a
   * handful of multiprocessors. `shared` aims at SPLITK_TARGET_GROUPS workgroups; `shared128` at
   * SPLITK_TARGET_GROUPS_128 (in at most SPLITK_MAX_128 splits), which also evens out the last wave
   * of mid-sized products (GPT-2's 4096×768 outputs over K = 3072). Each split covers at
   * least SPLITK_MIN_CHUNK k's and the partials must fit one storage binding. The software plan
   * never splits: 2–16 cores that a few workgroups already fill.
   */
  const splitK = (variant: string, M: number, N: number, K: number, batch = 1): number => {
    if (sw || K < SPLITK_MIN_K) return 1;
    if (!KM.takesSplitK(variant)) return 1;
    const { tileM, tileN } = KM.matmulGeometry(variant);
    const tiles = Math.ceil(M / tileM) * Math.ceil(N / tileN) * batch;
    const byK = Math.floor(K / SPLITK_MIN_CHUNK);
    // The partials [batch · S, M, N] must fit one binding.
    const byMemory = Math.floor(limits.maxStorageBufferBindingSize / (batch * M * N * 4));
    let s: number;
    if (variant === 'shared128') {
      // The rule fits the H200 sweep of GPT-2 small's products over K = 2304–4096: 36–192 tiles
      // fastest in 4–8 splits, from 576 tiles unsplit (docs/kernels/matmul.md, "The GPU tiles").
      s = Math.min(SPLITK_MAX_128, Math.floor(SPLITK_TARGET_GROUPS_128 / tiles));
    } else {
      s = Math.ceil(SPLITK_TARGET_GROUPS / tiles);
      if (batch > 1) s = Math.max(s, Math.ceil(K / SPLITK_BATCH_MAX_CHUNK));
    }
    return Math.max(1, Math.min(s, byK, byMemory));
  };
  return {
    variants: matmulVariants(kind, subgroupVariants, textures),
    subgroupVariants,
    splitsK: !sw,
    textures,
    // The software shape of `shared` exists for lavapipe's compiler; it goes with the plan, so the
    // hardware plan on lavapipe compiles exactly the GPU's kernel.
    softwareShared: sw,
    geluInProducts: geluInProducts ?? !sw,
    choose,
    splitK,
    // One pass up to COLSUM_CHUNK rows, on the software plan up to COLSUM_ONE_PASS_ROWS.
    colsumOnePass: (R) => R <= KM.COLSUM_CHUNK || (sw && R <= COLSUM_ONE_PASS_ROWS),
    // COLSUM_CHUNK rows, or on the hardware plan at least √R: neither pass runs a long serial loop
    // (64-row chunks over the needle model's 63 000 rows left ~1 000 dependent additions per column).
    colsumChunkRows: (R) => (sw ? KM.COLSUM_CHUNK : Math.max(KM.COLSUM_CHUNK, Math.ceil(Math.sqrt(R)))),
  };
}

/** The block attention kernels: forward, backward query side, backward key side. */
export type BlockKernel = 'fwd' | 'dq' | 'dkv';

/**
 * Block attention tiles to try, largest first: own rows (a workgroup of 4·rows invocations) × rows
 * streamed per block. Unmeasured on a GPU so far: at hd 64 the first takes 40–45 KiB of workgroup
 * memory (the H200 offers 48 KiB), the second 26.5–29 KiB (lavapipe's 32 KiB); the smaller ones serve
 * hd 128 (16 × 16 on the H200, 8 × 16 on lavapipe for the backward).
 */
export const BLOCK_TILES: Record<BlockKernel, readonly { rows: number; cols: number }[]> = {
  fwd: [{ rows: 64, cols: 32 }, { rows: 32, cols: 32 }, { rows: 16, cols: 16 }, { rows: 8, cols: 16 }],
  dq: [{ rows: 64, cols: 16 }, { rows: 32, cols: 16 }, { rows: 16, cols: 16 }, { rows: 8, cols: 16 }],
  dkv: [{ rows: 32, cols: 32 }, { rows: 32, cols: 16 }, { rows: 16, cols: 16 }, { rows: 8, cols: 16 }],
};

function attentionPlan(kind: PlanKind, sgSize: number, textures: boolean, storage: number, blockOpt?: boolean): AttentionPlan {
  const sw = kind === 'software';
  const block = blockOpt ?? !sw;
  const blockTiles = (k: BlockKernel, hd: number): KA.BlockOptions | null => {
    if (hd % 64 !== 0 || hd < 64) return null;
    const t = BLOCK_TILES[k].find((c) => KA.blockStorageBytes(k, { hd, ...c }) <= storage);
    return t ? { hd, ...t } : null;
  };
  // Hardware: 4 vec4s (16 channels) per lane (H200, hd 64: split 4 beats 2, 8 and 16; see
  // HW_SG_BACKWARD_MIN_HD); lavapipe: up to 8 vec4s per lane.
  const perLane = sw ? 8 : 4;
  const sgSplit = (hd: number, sg: number): number => {
    const nv = hd / 4;
    let c = 1;
    while (nv / c > perLane && nv % (2 * c) === 0 && 2 * c <= sg) c *= 2;
    return c;
  };
  return {
    subgroupSize: sgSize,
    runnable: sgSize ? ['ref', 'row', 'tiled', 'sg', 'block'] : ['ref', 'row', 'tiled', 'block'],
    variants: [...(sw ? ['ref', sgSize ? 'sg' : 'row'] : sgSize ? ['ref', 'tiled', 'sg'] : ['ref', 'tiled']), ...(block ? ['block'] : [])] as AttentionKernel[],
    textures,
    sgVec4PerLane: perLane,
    /**
     * Where `block` is on (the hardware plan's default) and the block kernels run (hd % 64 = 0, no
     * dropout, tiles that fit): block, both passes. Otherwise, hardware plan: tiled, and the sg
     * backward from HW_SG_BACKWARD_MIN_HD (no dropout, a lane per 16 channels fits the subgroup).
     * Software plan: sg; without subgroups, row — whose unrolled kernels lavapipe's LLVM takes
     * minutes to compile at large head dims, so above ROW_MAX_HD the scalar ref kernels. Unaligned
     * or hd % 4 ≠ 0: ref.
     */
    choose: (hd, pass, { fast, dropout }) => {
      if (!fast) return 'ref';
      if (block && !dropout && blockTiles('fwd', hd) && blockTiles('dq', hd) && blockTiles('dkv', hd)) return 'block';
      if (!sw) return pass === 'bwd' && sgSize && hd >= HW_SG_BACKWARD_MIN_HD && !dropout && hd / 16 <= sgSize ? 'sg' : 'tiled';
      return sgSize ? 'sg' : hd <= ROW_MAX_HD ? 'row' : 'ref';
    },
    /**
     * Lanes per row: one while a lane holds at most `sgVec4PerLane` vec4s of a row, else doubled
     * (while it divides hd/4 and fits the subgroup) — splitting costs shuffles (slower than unsplit
     * at hd 64 on lavapipe) but keeps lavapipe's compile time of the unrolled kernels to seconds.
     */
    sgSplit,
    /**
     * A lane owns R query rows (forward, dq) or key rows (dkv) 8 apart, so each loaded key (query)
     * serves 8R rows. Measured on lavapipe (R = 2 → 4; docs/performance.md, end-to-end step): 4 is
     * faster for the forward at hd 32 and hd 4, and for the backward at hd 4, but slower for the
     * backward at hd 32 (its kernels hold more per row). So the software plan takes 4 for the
     * forward and 2 for the backward, or 4 at hd ≤ 4; below 32 rows (a workgroup covers 8R rows) 2
     * keeps the lanes busy. The hardware plan keeps 1: tuned on lavapipe only, and on an H200 the
     * 4-rows backward with dropout at hd 4 failed to compile ("failed to validate local memory").
     */
    sgRowsPerLane: (T, hd, pass) => {
      if (!sw) return 1;
      if (T < 32) return 2;
      return pass === 'fwd' || hd <= 4 ? 4 : 2;
    },
    /**
     * Software plan, subgroups of 8, one lane per row, T ≤ SW_FUSED_BACKWARD_MAX_T and hd ≤
     * SW_FUSED_BACKWARD_MAX_HD: the fused backward with R = ⌈T/8⌉ rows per lane (the needle's buckets
     * at hd 4: a median 24 ms per layer against 42 for the dq + dkv pair). Not on hardware: untried there.
     */
    sgFusedBackwardRows: (T, hd, sg, split) =>
      sw && sg === 8 && split === 1 && T <= SW_FUSED_BACKWARD_MAX_T && hd <= SW_FUSED_BACKWARD_MAX_HD ? Math.max(1, Math.ceil(T / 8)) : 0,
    block,
    blockTiles,
  };
}

/**
 * The plan for an adapter: `adapter` (kind and subgroup sizes), `limits`, `features` (the device's
 * enabled features), `opts` (planAs, textures).
 */
export function planFor(adapter: PlanAdapter, limits: PlanLimits, features: ReadonlySet<string> | readonly string[], opts: PlanOptions = {}): KernelPlan {
  const has = (f: string) => (features instanceof Set ? features.has(f) : (features as readonly string[]).includes(f));
  const kind: PlanKind = opts.planAs ?? (adapter.software ? 'software' : 'hardware');
  const sw = kind === 'software';
  // Adapter facts: which subgroup kernels can run at all.
  const subgroupVariants = has('subgroups') && adapter.subgroupMinSize >= KM.SG_LANES;
  const lo = adapter.subgroupMinSize;
  const sgSize = has('subgroups') && lo > 0 && lo === adapter.subgroupMaxSize ? lo : 0;
  // Textures: lavapipe's texel fetch clamps coordinates with SIMD instructions while its storage
  // loads branch per lane; the copy into a texture pays there (docs/performance.md). A plan choice.
  const textures = sw && (opts.textures ?? true);
  const targetThreads = sw ? 4096 : 65536;
  /**
   * Chunks of a reduction of n over `outputs` sums: enough to expose `targetThreads` invocations,
   * each chunk at least `minChunk` long. On the hardware plan at most ⌈√n⌉ chunks: the final pass
   * sums the chunks serially per output, so 16 outputs over 63 000 rows (the needle model's
   * LayerNorm dγ, dβ) made ~3 900 chunks of 16 rows and a 3 900-step loop per output (slow on an
   * H200: docs/performance.md, "On a real GPU", Reductions); √n balances the two passes' loops.
   */
  const chunks = (outputs: number, n: number, minChunk = 32): ChunkPlan => {
    let nChunks = 1;
    if (outputs < targetThreads && n > minChunk) nChunks = Math.min(Math.ceil(targetThreads / Math.max(1, outputs)), Math.ceil(n / minChunk));
    if (!sw) nChunks = Math.min(nChunks, Math.max(1, Math.ceil(Math.sqrt(n))));
    const chunkLen = Math.max(1, Math.ceil(n / nChunks));
    return { nChunks: Math.max(1, Math.ceil(n / chunkLen)), chunkLen };
  };
  return {
    kind,
    adapterSoftware: adapter.software,
    matmul: matmulPlan(kind, subgroupVariants, textures, limits, opts.geluInProducts),
    attention: attentionPlan(kind, sgSize, textures, limits.maxComputeWorkgroupStorageSize ?? 16384, opts.blockAttention),
    layernorm: {
      // On a GPU a 128-lane workgroup per row leaves most lanes idle on narrow rows (d = 16: 16 of
      // 128): narrow and many rows get an invocation each, as the cross-entropy rows do below.
      choose: (d, rows) => (sw || (d <= ROW_THREAD_MAX_WIDTH && rows >= ROW_THREAD_MIN_ROWS) ? 'thread' : 'wg'),
      paramChunks: (d, rows) => (sw && rows <= LN_PARAMS_ONE_PASS_ROWS ? { nChunks: 1, chunkLen: rows } : chunks(d, rows, 16)),
    },
    // One invocation per row on the software plan; on a GPU it only pays when rows are short and many.
    rows: { choose: (V, N) => (sw || (V <= ROW_THREAD_MAX_WIDTH && N >= ROW_THREAD_MIN_ROWS) ? 'thread' : 'wg') },
    reduce: {
      targetThreads,
      sumsqThreads: sw ? 4096 : 65536,
      sqrtCap: !sw,
      variants: sw ? ['axis'] : ['axis', 'rows'],
      chunks,
      // A workgroup per output only on the hardware plan, for single sums over ≥ 1024 elements.
      choose: (inner, n) => (inner === 1 && !sw && n >= 1024 ? 'rows' : 'axis'),
    },
    // lavapipe: fewer, longer invocations; GPUs: the grid's limit.
    activation: { maxRowGroups: sw ? 256 : 65535 },
    // 64 norm groups measured faster on lavapipe (docs/kernels/adamw.md); unroll 1 everywhere so far.
    adamw: { normGroups: sw ? 64 : 1024, unroll: 1 },
    wait: { spin: !adapter.software },
  };
}

/** The plan as text, one line per op family (`kindling device`, `Profiler.describePlan`). */
export function describePlan(p: KernelPlan): string {
  const sw = p.kind === 'software';
  const m = p.matmul;
  const a = p.attention;
  const lines = [
    `kernel plan: ${p.kind}${p.kind !== (p.adapterSoftware ? 'software' : 'hardware') ? ` (adapter: ${p.adapterSoftware ? 'software' : 'hardware'}; KINDLING_PLAN_AS / planAs)` : ''}`,
    `  matmul:     ${m.variants.join(', ')}; split-K ${m.splitsK ? `from K ≥ ${SPLITK_MIN_K} (shared, shared128)` : 'off'}; textures ${m.textures ? 'on' : 'off'}; MLP GELU ${m.geluInProducts ? 'inside its products' : 'kernels'} (KINDLING_GELU_IN_PRODUCTS)`,
    `  colsum:     one pass up to ${sw ? COLSUM_ONE_PASS_ROWS : KM.COLSUM_CHUNK} rows; chunks of ${sw ? KM.COLSUM_CHUNK : `max(${KM.COLSUM_CHUNK}, √R)`} rows`,
    `  attention:  ${a.variants.join(', ')} (runnable: ${a.runnable.join(', ')}); sg ${a.subgroupSize ? `${a.subgroupSize} lanes, ≤ ${a.sgVec4PerLane} vec4 per lane, rows per lane ${sw ? '4 fwd / 2 bwd' : '1'}` : 'off'}; qkv texture ${a.textures ? 'on' : 'off'}; block kernels ${a.block ? 'on where they run (hd % 64 = 0, no dropout)' : 'off'} (KINDLING_BLOCK_ATTENTION)`,
    `  layernorm:  ${sw ? 'thread' : `wg; thread for d ≤ ${ROW_THREAD_MAX_WIDTH} and rows ≥ ${ROW_THREAD_MIN_ROWS}`}; dγ/dβ ${sw ? `one pass up to ${LN_PARAMS_ONE_PASS_ROWS} rows, then chunks` : 'chunks'}`,
    `  rows (cross-entropy, argmax): ${sw ? 'thread' : `wg; thread for V ≤ ${ROW_THREAD_MAX_WIDTH} and N ≥ ${ROW_THREAD_MIN_ROWS}`}`,
    `  reduce:     ${p.reduce.variants.join(', ')}; ${p.reduce.targetThreads} invocations before chunking${p.reduce.sqrtCap ? ', ≤ √n chunks' : ''}; sum of squares ≤ ${p.reduce.sumsqThreads} invocations per region`,
    `  bias rows:  ≤ ${p.activation.maxRowGroups} workgroups`,
    `  adamw:      norm groups ${p.adamw.normGroups}, unroll ${p.adamw.unroll}`,
    `  waits:      ${p.wait.spin ? 'spin' : 'throttled'} (adapter; KINDLING_SPIN_WAIT overrides)`,
  ];
  return lines.join('\n');
}
