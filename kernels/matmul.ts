/**
 * Matrix multiplication: C = op(A)·op(B) (+ bias broadcast over rows) (+ C when accumulating), for a
 * batch of independent products, plus `colsum` (column sums, the bias gradient).
 *
 * Layout (row-major, every operand contiguous):
 *   A      [M, K], or [K, M] when `transA` (then op(A) = Aᵀ)
 *   B      [K, N], or [N, K] when `transB`
 *   C      [M, N]
 *   bias   [N] (or [batch, N] with `sBias` = N: a bias per batch entry)
 * The batch index is the dispatch's z; operand x of batch z starts at z·strideX elements (uniforms
 * `sA`, `sB`, `sC`, `sBias`); a stride of 0 broadcasts (e.g. one weight shared by every batch entry).
 * The shared variants can also sum B's columns from the tiles they stage (`colsumB`: the bias
 * gradient beside dW = xᵀ·dY).
 * Bias and accumulate are runtime flags (uniform `flags`), not specialisations: one compiled kernel
 * per variant, form and vec4 layout serves the forward (bias) and the gradient products
 * (accumulate = beta 1, C += A·B, straight into a gradient buffer). Without a bias the bias
 * binding is a placeholder (the op layer binds A).
 *
 * Variants (all reachable by name; the op layer picks one per adapter and shape):
 *   naive          one output per invocation, a K loop of scalar loads. The reference variant.
 *   reg{TM}x{TN}   register tile: each invocation computes TM rows × TN columns, the K loop
 *   [k{KU}][w{WG}] unrolled by KU (default 4), vec4 loads where the layout allows, no workgroup
 *                  memory, no barriers; WG invocations per workgroup (default 16). Portable.
 *   sg{TM}x{TN}    subgroup-broadcast register tile, for lavapipe: a workgroup is one subgroup of
 *                  8 lanes; every lane computes the same TM rows and its own TN columns. For each
 *                  block of 8 k's, lane l loads element k + l of each of the TM rows of A, and
 *                  subgroupBroadcast(v, u) hands element k + u to all lanes, so A costs one load
 *                  per 8 values instead of 8; each lane loads its own B row segments (vec4). The
 *                  products of a block are summed in SSA values and added to the accumulators
 *                  once per block. Needs subgroups of ≥ 8 lanes.
 *   shared         classic shared-memory tiling for real GPUs: a 64×64 output tile per 16×16
 *                  workgroup, K tiles of 16 staged in `var<workgroup>` with barriers, each thread a
 *                  4×4 register sub-tile.
 *   shared128      the same for big products: a 128×128 output tile per 16×16 workgroup, each
 *                  thread 8×8 outputs (two 4-row × two 4-column blocks, 64 apart, so the vec4
 *                  reads of the staged tiles are consecutive across threads), staged tiles stored
 *                  k-major as vec4 rows padded by one vec4, vec4 global loads along an operand's
 *                  contiguous dimension and vec4 stores where the layout allows: 64 FMAs per four
 *                  vec4 workgroup-memory reads instead of 16 per eight scalar ones.
 *
 * Why it looks like this on lavapipe (Mesa 25.0, LLVM 15, AVX2): every storage-buffer load whose
 * address is not a compile-time constant is expanded per SIMD lane (mask test, bounds check,
 * scalar load, insert), tens of instructions per lane, so loads, not FMAs, bound the kernel; and
 * every write to a loop-carried variable goes through the execution mask. Hence: few loads per
 * FMA (big TM, A shared through subgroup broadcasts, vec4 B), few accumulator writes (one per
 * block), and — since lavapipe compiles each unrolled load site separately (seconds per kernel) —
 * A's row loads, scalar B loads and the stores sit in loops with bounds the compiler cannot see
 * through (`select(n, P.K, P.K == 0xffffffff)`, always n), which keeps them from being unrolled.
 *
 * Edges: loads clamp their row/column indices into range (the extra lanes compute values that are
 * never stored) and stores are guarded; the last K block may run past K: its indices are clamped
 * and the values past K replaced by zeros with a select, so there is no scalar tail loop.
 * vec4 specialisations (register variants): an operand is read as vec4 along its contiguous
 * dimension when that dimension is a multiple of 4 (so batch strides and row offsets are 16-byte
 * aligned too; binding offsets are aligned by the allocator); C and bias when N % 4 = 0. naive and
 * shared read scalars. Subgroup variants with B [K, N] in vec4 can instead read B from an
 * rgba32float texture (`texB`, tag `bt`), and with A [M, K] in vec4 read A from one (`texA`, tag
 * `at`; one texel fetch gives 4 rows × 8 k's to the 8 lanes): on lavapipe a texel fetch clamps the
 * lanes' coordinates with SIMD instructions where a storage load branches per lane.
 *
 * GELU (`geluA` / `dgeluC`; naive, shared and shared128 only; tags `ga` / `dg`): op(A) is GELU of
 * the stored A, applied as it is loaded, and each output times GELU'(Z) (binding `Z`, laid out as
 * C) before the bias and the store: the MLP's gelu(z)·W, gelu(z)ᵀ·dY and (dY·Wᵀ)·GELU'(z) without
 * a GELU pass or a stored gelu(z).
 *
 * Half-precision operands (`halfA` / `halfB`; naive, shared and shared128 only): f16 (tags `ah` /
 * `bh`; `array<f16>` / `array<vec4<f16>>`, needs `shader-f16`) or bf16 (tags `abf` / `bbf`; pairs
 * packed in `array<u32>` / `array<vec2<u32>>`, unpacked with shifts: any adapter), converted to f32
 * at each load, products and accumulators in f32 (the mixed-precision path, engine/precision.ts).
 *
 * Source: one shader per variant with its switches (forms, vec4 and texture operands, vec4 C,
 * software loop bounds, subgroup lanes, colsum's accumulate) in place as wgsl-preprocessor
 * `#if` / `#elif` / `#else` blocks; only the unrolled per-register lines (loops over a tile's rows,
 * columns and k's) are generated with template strings.
 *
 * The kernel name spells the variant and the specialisation, e.g. `matmul.sg64x8.nt[a4,b4,c4]`,
 * so the profiler shows which one ran.
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { GELU_HELPERS } from './activation.ts';
import { FLAT_INDEX, kernel, memo, ro, rw, tex, type KernelSpec } from './spec.ts';

const rep = (n: number, f: (i: number) => string, sep = '\n'): string => Array.from({ length: n }, (_, i) => f(i)).join(sep);

export interface MatmulKernelOptions {
  /** 'naive' | 'reg{TM}x{TN}[k{KU}][w{WG}]' | 'sg{TM}x{TN}' | 'shared' | 'shared128'. */
  variant: string;
  transA: boolean;
  transB: boolean;
  /** Read A as vec4 along its contiguous dimension (K when !transA, M when transA). */
  vecA: boolean;
  /** Read B as vec4 along its contiguous dimension (N when !transB, K when transB). */
  vecB: boolean;
  /** Read/write C (and bias) as vec4 along N. */
  vecC: boolean;
  /**
   * Subgroup variants, vec4 B: read B through textureLoad from an rgba32float texture instead of a
   * storage buffer: B [K, N] as N/4 × K texels per batch entry (batch z's rows start at z·sB/N),
   * Bᵀ [N, K] as K/4 × N texels (rows start at z·sB/K). lavapipe clamps a texel fetch's
   * coordinates with SIMD instructions where a storage load takes a compare-and-branch per lane, so
   * the fetch is the cheaper load (measured in docs/kernels/matmul.md, "Operands through textures",
   * and docs/performance.md, Matmul).
   */
  texB?: boolean;
  /**
   * Subgroup variants, A not transposed and vec4, TM % 4 = 0: read A through textureLoad from an
   * rgba32float texture of K/4 × M texels per batch entry (batch z's rows start at z·sA/K). Lane l
   * fetches texel (k/4 + l % 2, row 4r + l / 2): one fetch covers 4 rows × 8 k, so a block takes
   * TM/4 fetches instead of TM per-lane scalar loads (tag `at`).
   */
  texA?: boolean;
  /**
   * Shape the code for a software adapter (shared variant only): loops that lavapipe would unroll
   * (and then take many seconds to compile, since it expands every memory access per lane) get
   * bounds it cannot see through. Hardware gets constant bounds and register-only accumulators.
   */
  software?: boolean;
  /**
   * Shared variants: also sum op(B)'s columns over the workgroup's K range from the B tiles it
   * stages, `colsum[z·N + n]` (+)= Σ_k op(B)(k, n) (z: the workgroup's z, batch entry · splits +
   * split), written by the first row of output tiles (wid.y = 0). With B = dY of a linear layer
   * this is the bias gradient beside dW = xᵀ·dY, without a second pass over dY (tag `s`).
   */
  colsumB?: boolean;
  /**
   * naive and shared variants: A is stored in a 2-byte float type, converted to f32 as it is loaded;
   * the products accumulate in f32 (the mixed-precision path, engine/precision.ts). 'f16':
   * `array<f16>` (`array<vec4<f16>>` with vecA), needs `shader-f16`, tag `ah`; 'bf16': packed two to
   * a u32, element 2i in the low half of word i (`array<u32>`, `array<vec2<u32>>` with vecA), any
   * adapter, tag `abf`.
   */
  halfA?: 'f16' | 'bf16';
  /** The same for B (tags `bh`, `bbf`). */
  halfB?: 'f16' | 'bf16';
  /**
   * naive and shared variants: op(A) is GELU of the stored A, applied as each element is loaded
   * (after a half operand's conversion): the MLP's second product gelu(z)·W and its weight gradient
   * gelu(z)ᵀ·dY read z and never a stored gelu(z) (tag `ga`).
   */
  geluA?: boolean;
  /**
   * naive and shared variants, one split: each output is multiplied by GELU'(Z) at the same element
   * before the bias and the store (binding `Z`, laid out as C): the MLP's dz = (dY·Wᵀ)·GELU'(z) in
   * the product that forms dY·Wᵀ (tag `dg`).
   */
  dgeluC?: boolean;
}

/**
 * Variants whose operand loads and stores are per-element code the options can hook: half-precision
 * operands (`halfA` / `halfB`) and the GELU operand and epilogue (`geluA` / `dgeluC`) exist there only.
 */
export const OPERAND_HOOK_VARIANTS: readonly string[] = ['naive', 'shared', 'shared128'];

/** Bits of the `flags` uniform. */
export const MATMUL_BIAS = 1;
export const MATMUL_ACCUMULATE = 2;
/** With `colsumB`: add the column sums to the binding's old values instead of overwriting them. */
export const MATMUL_COLSUM_ACCUMULATE = 4;

export const MATMUL_UNIFORMS: [string, 'u32'][] = [
  ['M', 'u32'],
  ['N', 'u32'],
  ['K', 'u32'],
  ['sA', 'u32'],
  ['sB', 'u32'],
  ['sC', 'u32'],
  ['flags', 'u32'],
  // Split-K (shared variants): workgroup z = batch entry · splits + split; split s sums k in
  // [s·kChunk, min(K, (s+1)·kChunk)) and writes its partial product at C + wid.z·sC. splits = 1,
  // kChunk ≥ K: the plain product. Other variants ignore both.
  ['splits', 'u32'],
  ['kChunk', 'u32'],
  // Bias elements per batch entry: entry z adds bias[z·sBias + n] (0: one bias for every entry).
  ['sBias', 'u32'],
];

/** Geometry of a variant: output tile per workgroup and the workgroup size. */
export interface MatmulGeometry {
  /** Output rows covered by one workgroup. */
  tileM: number;
  /** Output columns covered by one workgroup. */
  tileN: number;
  workgroupSize: [number, number, number];
}

interface RegParams {
  tm: number;
  tn: number;
  ku: number;
  wg: number;
  /** A's values reach the lanes through subgroupBroadcast (lane l loads the l-th slice of a K block). */
  sg: boolean;
}

const REG_RE = /^(reg|sg)(\d+)x(\d+)(?:k(\d+))?(?:w(\d+))?$/;

/** Lanes that cooperate in one subgroup broadcast (the subgroup must have at least this many). */
export const SG_LANES = 8;

function regParams(variant: string): RegParams | null {
  const m = REG_RE.exec(variant);
  if (!m) return null;
  const sg = m[1] === 'sg';
  const tm = Number(m[2]);
  const tn = Number(m[3]);
  const ku = m[4] ? Number(m[4]) : sg ? SG_LANES : 4;
  const wg = m[5] ? Number(m[5]) : sg ? 8 : 16;
  if (sg && ku !== SG_LANES) throw new Error(`matmul: bad subgroup variant "${variant}" (K blocks are ${SG_LANES}: one k per lane)`);
  if ((tn % 4 !== 0 && tn !== 1 && tn !== 2) || tm < 1 || tm > 128 || tn > 16 || ku % 4 !== 0 || ku > 32 || wg < 1 || wg > 256)
    throw new Error(`matmul: bad register-tile variant "${variant}" (TN must be 1, 2, 4, 8, 12 or 16; TM 1..128; KU a multiple of 4 up to 32)`);
  return { tm, tn, ku, wg, sg };
}

const SHARED_T = 16; // threads per side
const SHARED_R = 4; // register sub-tile per thread (R×R)
const SHARED_KT = 16; // K tile
const NAIVE_WG = 8;

/** Whether a variant takes split-K (the `splits` / `kChunk` uniforms): the workgroup-memory tiles. */
export function takesSplitK(variant: string): boolean {
  return variant === 'shared' || variant === 'shared128';
}

/** Whether `variant` names a known matmul variant. */
export function isMatmulVariant(variant: string): boolean {
  if (variant === 'naive' || takesSplitK(variant)) return true;
  try {
    return regParams(variant) !== null;
  } catch {
    return false;
  }
}

export function matmulGeometry(variant: string): MatmulGeometry {
  if (variant === 'naive') return { tileM: NAIVE_WG, tileN: NAIVE_WG, workgroupSize: [NAIVE_WG, NAIVE_WG, 1] };
  if (variant === 'shared') return { tileM: SHARED_T * SHARED_R, tileN: SHARED_T * SHARED_R, workgroupSize: [SHARED_T, SHARED_T, 1] };
  if (variant === 'shared128') return { tileM: 128, tileN: 128, workgroupSize: [16, 16, 1] };
  const r = regParams(variant);
  if (!r) throw new Error(`matmul: unknown variant "${variant}" (naive, reg{TM}x{TN}[k{KU}][w{WG}], sg{TM}x{TN}, shared, shared128)`);
  return { tileM: r.tm, tileN: r.tn * r.wg, workgroupSize: [r.wg, 1, 1] };
}

/** Row tile and column tile each invocation of a register variant computes (1×1 for the others). */
export function matmulInvocationTile(variant: string): [number, number] {
  const r = regParams(variant);
  return r ? [r.tm, r.tn] : [1, 1];
}

function specName(o: MatmulKernelOptions): string {
  const form = `${o.transA ? 't' : 'n'}${o.transB ? 't' : 'n'}`;
  const tags: string[] = [];
  if (o.software && o.variant === 'shared') tags.push('sw');
  if (o.texA) tags.push('at');
  else if (o.vecA) tags.push('a4');
  if (o.halfA) tags.push(o.halfA === 'f16' ? 'ah' : 'abf');
  if (o.texB) tags.push('bt');
  else if (o.vecB) tags.push('b4');
  if (o.halfB) tags.push(o.halfB === 'f16' ? 'bh' : 'bbf');
  if (o.vecC) tags.push('c4');
  if (o.colsumB) tags.push('s');
  if (o.geluA) tags.push('ga');
  if (o.dgeluC) tags.push('dg');
  return `matmul.${o.variant}.${form}${tags.length ? `[${tags.join(',')}]` : ''}`;
}

type Half = MatmulKernelOptions['halfA'];

/** Storage type of an operand: f32 or f16 elements (scalar or vec4), or bf16 pairs in u32 words (a vec4 of bf16: vec2<u32>). */
function operandType(vec: boolean, half: Half): string {
  if (half === 'bf16') return vec ? 'array<vec2<u32>>' : 'array<u32>';
  const e = half === 'f16' ? 'f16' : 'f32';
  return vec ? `array<vec4<${e}>>` : `array<${e}>`;
}

/** WGSL f32 value of element `idx` of an operand array (any storage type, scalar or vec4 typed). */
function elementAt(arr: string, vec: boolean, half: Half, idx: string): string {
  if (half === 'bf16') return vec ? `bf16_at(${arr}[(${idx}) >> 2u][((${idx}) & 3u) >> 1u], (${idx}) & 1u)` : `bf16_at(${arr}[(${idx}) >> 1u], (${idx}) & 1u)`;
  const v = scalarAt(arr, vec, idx);
  return half === 'f16' ? `f32(${v})` : v;
}

/** WGSL vec4<f32> of the vec4 at vec4 index `i` of an operand array declared with vec4 elements. */
function vec4At(arr: string, half: Half, i: string): string {
  if (half === 'bf16') return `bf16x4(${arr}[${i}])`;
  return half === 'f16' ? `vec4<f32>(${arr}[${i}])` : `${arr}[${i}]`;
}

/** Helpers bf16 operands need: element h (0: low, 1: high half) of a word, and four of two words. */
const BF16_HELPERS = /* wgsl */ `
fn bf16_at(w: u32, h: u32) -> f32 { return bitcast<f32>(select(w << 16u, w & 0xffff0000u, h == 1u)); }
fn bf16x4(w: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u));
}`;

function bindings(o: MatmulKernelOptions) {
  const c = o.vecC ? 'array<vec4<f32>>' : 'array<f32>';
  return [
    o.texA ? tex('A') : ro('A', operandType(!!o.vecA, o.halfA)),
    o.texB ? tex('B') : ro('B', operandType(!!o.vecB, o.halfB)),
    ro('bias', c),
    rw('C', c),
    ...(o.dgeluC ? [ro('Z', c)] : []),
    ...(o.colsumB ? [rw('colsum', 'array<f32>')] : []),
  ];
}

/** WGSL scalar read of element `idx` (an f32 index) from an array that may be vec4-typed. */
function scalarAt(arr: string, vec: boolean, idx: string): string {
  return vec ? `${arr}[(${idx}) >> 2u][(${idx}) & 3u]` : `${arr}[${idx}]`;
}

/** Generic scalar accessors for op(A)(m, k) and op(B)(k, n) with batch bases aB, bB. */
function accessors(o: MatmulKernelOptions): string {
  const aIdx = o.transA ? 'aB + k * P.M + m' : 'aB + m * P.K + k';
  const bIdx = o.transB ? 'bB + n * P.K + k' : 'bB + k * P.N + n';
  const a = elementAt('A', o.vecA, o.halfA, aIdx);
  return /* wgsl */ `${o.halfA === 'bf16' || o.halfB === 'bf16' ? BF16_HELPERS : ''}${o.geluA || o.dgeluC ? `\n${GELU_HELPERS}` : ''}
fn loadA(aB: u32, m: u32, k: u32) -> f32 { return ${o.geluA ? `gelu_f(${a})` : a}; }
fn loadB(bB: u32, k: u32, n: u32) -> f32 { return ${elementAt('B', o.vecB, o.halfB, bIdx)}; }`;
}

/**
 * Epilogue for one scalar output `v` at element `ci`, column `n`: + bias[n] when the bias flag is
 * set, + the old C when accumulating, then the store. Flags are uniform, so the branches are too.
 */
function storeScalar(o: MatmulKernelOptions, ci: string, n: string, v: string): string {
  return `{
    var v = ${v};${o.dgeluC ? `\n    v = v * gelu_grad_f(${scalarAt('Z', o.vecC, ci)});` : ''}
    if ((P.flags & ${MATMUL_BIAS}u) != 0u) { v = v + ${scalarAt('bias', o.vecC, `z * P.sBias + ${n}`)}; }
    if ((P.flags & ${MATMUL_ACCUMULATE}u) != 0u) { v = v + ${scalarAt('C', o.vecC, ci)}; }
    ${scalarAt('C', o.vecC, ci)} = v;
  }`;
}

// ------------------------------------------------------------------------------------------ naive

function naiveBody(o: MatmulKernelOptions): string {
  return /* wgsl */ `
${accessors(o)}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  let z = gid.z;
  if (m >= P.M || n >= P.N) { return; }
  let aB = z * P.sA;
  let bB = z * P.sB;
  var acc = 0.0;
  for (var k = 0u; k < P.K; k = k + 1u) {
    acc = fma(loadA(aB, m, k), loadB(bB, k, n), acc);
  }
  let ci = z * P.sC + m * P.N + n;
  ${storeScalar(o, 'ci', 'n', 'acc')}
}`;
}

// ------------------------------------------------------------------------------- register tiled

function regBody(o: MatmulKernelOptions, r: RegParams): string {
  const { tm: TM, tn: TN, sg: SG } = r;
  const KU = SG ? SG_LANES : r.ku;
  const W = Math.min(TN, 4); // accumulator width: columns per vector
  const G = TN / W; // column groups per invocation
  const VT = W === 1 ? 'f32' : `vec${W}<f32>`;
  const vecOf = (xs: string[]): string => (W === 1 ? xs[0]! : `${VT}(${xs.join(', ')})`);
  const splat = (x: string): string => (W === 1 ? x : `${VT}(${x})`);
  const lanes = Array.from({ length: W }, (_, c) => c);
  if (o.transA && o.vecA && TM % 4 !== 0) throw new Error('matmul: transposed vec4 A needs TM % 4 = 0');
  if (!o.transB && o.vecB && W !== 4) throw new Error('matmul: vec4 B along N needs TN % 4 = 0');
  if (o.vecC && W !== 4) throw new Error('matmul: vec4 C needs TN % 4 = 0');
  if (o.texB && !(SG && o.vecB)) throw new Error('matmul: texture B needs a subgroup variant and vec4 B');
  if (o.texA && !(SG && !o.transA && o.vecA && TM % 4 === 0)) throw new Error('matmul: texture A needs a subgroup variant, A not transposed, vec4 A, TM % 4 = 0');
  const Z4 = 'vec4<f32>(0.0)';
  const clampRow = (e: string) => `min(${e}, P.M - 1u)`;
  const clampCol = (e: string) => `min(${e}, P.N - 1u)`;
  /** value of a K-indexed load, zero past K; `kk` is the first k the load covers. */
  const guard = (v: string, kk: string, zero: string) => `select(${zero}, ${v}, ${kk} < P.K)`;
  const kIdx = (u: string) => `min(k + ${u}, kLast)`;
  const bc = (v: string, lane: number) => `subgroupBroadcast(${v}, ${lane}u)`;
  /** op(A)(m0 + i, k + u) inside a K block: a value the block's loads left in a register. */
  const aAt = (i: number, u: number): string => {
    if (SG) {
      // Lane l loaded element k + l of the row (texA: k + 4·(l % 2) … + 3 of row 4i + l / 2);
      // subgroupBroadcast(v, u) hands element k + u to every lane.
      if (o.texA) return bc(`al[${i >> 2}][${u & 3}]`, 2 * (i & 3) + (u >> 2));
      return o.transA && o.vecA ? bc(`al[${i >> 2}][${i % 4}]`, u) : bc(`al[${i}]`, u);
    }
    if (!o.transA) return o.vecA ? `av${i}_${Math.floor(u / 4)}[${u % 4}]` : `a${i}_${u}`;
    return o.vecA ? `at${u}_${Math.floor(i / 4)}[${i % 4}]` : `a${i}_${u}`;
  };
  /** Bᵀ: op(B)(k + u, n0 + j), from row j of B. */
  const btAt = (j: number, u: number): string => (o.vecB ? `bt${j}_${Math.floor(u / 4)}[${u % 4}]` : `bs${j}_${u}`);
  /** `let bv{u}_{g} = value;`: op(B)(k+u, n0+W·g .. n0+W·g+W-1), for every u of the block and g. */
  const bvLines = (value: (u: number, g: number) => string): string => rep(KU, (u) => rep(G, (g) => `    let bv${u}_${g} = ${value(u, g)};`));
  const kGuard = (u: number, v: string, zero: string) => guard(v, `k + ${u}u`, zero);

  // Each accumulator is written once per block: the block's products are summed in SSA values
  // first (lavapipe stores every write to a loop-carried variable through the execution mask).
  const fmas = rep(TM, (i) => {
    const lines: string[] = [];
    const as = Array.from({ length: KU }, (_, u) => {
      const a = aAt(i, u);
      if (!(G > 1 && a.includes('('))) return a;
      lines.push(`    let ab${i}_${u} = ${a};`);
      return `ab${i}_${u}`;
    });
    for (let g = 0; g < G; g++) {
      let e = `${splat(as[0]!)} * bv0_${g}`;
      for (let u = 1; u < KU; u++) e = `fma(${splat(as[u]!)}, bv${u}_${g}, ${e})`;
      lines.push(`    c${i}_${g} = c${i}_${g} + ${e};`);
    }
    return lines.join('\n');
  });

  const hasBias = `(P.flags & ${MATMUL_BIAS}u) != 0u`;
  const hasAcc = `(P.flags & ${MATMUL_ACCUMULATE}u) != 0u`;
  return wgsl`
@compute @workgroup_size(WG_X, 1, 1)
#if ${SG}
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(subgroup_invocation_id) sgid: u32) {
  let sid = sgid % ${SG_LANES}u;
#else
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
#endif
  let m0 = wid.y * ${TM}u;
  let n0 = (wid.x * WG_X + lid.x) * ${TN}u;
  let z = wid.z;
  let aB = z * P.sA;
  let bB = z * P.sB;
  let cB = z * P.sC;
  let kLast = max(P.K, 1u) - 1u;
  let k4Last = max(P.K >> 2u, 1u) - 1u;
  // Row and column indices. Loads clamp them into range (once, before the K loop); lanes past the
  // edge compute values that are never stored.
#if ${SG}
  // Subgroup variants compute A's addresses in their row loop.
#if ${o.texA}
  let aRow = aB / P.K;
#endif
#elif ${!o.transA}
  // A[m, k] at aB + m·K + k: a row offset per row (in vec4 units when vecA).
${rep(TM, (i) => `  let ra${i} = ${o.vecA ? `(aB + ${clampRow(`m0 + ${i}u`)} * P.K) >> 2u` : `aB + ${clampRow(`m0 + ${i}u`)} * P.K`};`)}
#elif ${o.vecA}
  // A[k, m] at aB + k·M + m, vec4 along m: one group index per 4 rows.
${rep(TM / 4, (p) => `  let ga${p} = min((m0 >> 2u) + ${p}u, (P.M >> 2u) - 1u);`)}
#else
${rep(TM, (i) => `  let ma${i} = ${clampRow(`m0 + ${i}u`)};`)}
#endif
#if ${o.transA && o.vecA}
  let a4B = aB >> 2u;
  let M4 = P.M >> 2u;
#endif
#if ${!o.transB && o.vecB}
${rep(G, (g) => `  let gb${g} = min((n0 >> 2u) + ${g}u, (P.N >> 2u) - 1u);`)}
#if ${o.texB}
  let bRow = bB / P.N;
#endif
  let b4B = bB >> 2u;
  let N4 = P.N >> 2u;
#elif ${!o.transB}
${rep(TN, (j) => `  let nb${j} = ${clampCol(`n0 + ${j}u`)};`)}
#elif ${o.texB}
  // Bᵀ: row n of B [N, K] is texture row bB/K + n.
${rep(TN, (j) => `  let rb${j} = bB / P.K + ${clampCol(`n0 + ${j}u`)};`)}
#else
  // B[n, k] at bB + n·K + k.
${rep(TN, (j) => `  let rb${j} = ${o.vecB ? `(bB + ${clampCol(`n0 + ${j}u`)} * P.K) >> 2u` : `bB + ${clampCol(`n0 + ${j}u`)} * P.K`};`)}
#endif
${rep(TM, (i) => rep(G, (g) => `  var c${i}_${g} = ${splat('0.0')};`))}
#if ${SG}
  let nA = select(${(o.transA && o.vecA) || o.texA ? TM / 4 : TM}u, P.K, P.K == 0xffffffffu);
#if ${!o.vecB}
  let nU = select(${KU}u, P.K, P.K == 0xffffffffu);
  let nJ = select(${TN}u, P.K, P.K == 0xffffffffu);
#endif
#endif
  // One unrolled block of KU k's from k per iteration. The last block may run past K: indices are
  // clamped and the values past K replaced by zeros (select, no branch), so there is no scalar tail.
  let kEnd = P.K + ${KU - 1}u;
  for (var k = 0u; k < kEnd - kEnd % ${KU}u; k = k + ${KU}u) {
    // A. Subgroup variants: lane l loads row i's element k + l of the block (or, for Aᵀ with vec4,
    // 4 rows' elements; texA: texel (k/4 + l % 2, row 4i + l / 2), k + 4·(l % 2) … + 3 of row
    // 4i + l / 2), at one load site in a loop over rows with an opaque bound, into a private array.
#if ${SG && o.texA}
    var al: array<vec4<f32>, ${TM / 4}>;
    for (var i = 0u; i < nA; i = i + 1u) {
      al[i] = select(${Z4}, textureLoad(A, vec2<u32>(min((k >> 2u) + (sid & 1u), k4Last), aRow + min(m0 + 4u * i + (sid >> 1u), P.M - 1u)), 0),
                     k + 4u * (sid & 1u) < P.K);
    }
#elif ${SG && !o.transA && o.vecA}
    var al: array<f32, ${TM}>;
    for (var i = 0u; i < nA; i = i + 1u) {
      al[i] = select(0.0, A[((aB + min(m0 + i, P.M - 1u) * P.K) >> 2u) + (min(k + sid, kLast) >> 2u)][min(k + sid, kLast) & 3u], k + sid < P.K);
    }
#elif ${SG && !o.transA}
    var al: array<f32, ${TM}>;
    for (var i = 0u; i < nA; i = i + 1u) { al[i] = select(0.0, A[(aB + min(m0 + i, P.M - 1u) * P.K) + min(k + sid, kLast)], k + sid < P.K); }
#elif ${SG && o.vecA}
    var al: array<vec4<f32>, ${TM / 4}>;
    for (var i = 0u; i < nA; i = i + 1u) { al[i] = select(${Z4}, A[a4B + min(k + sid, kLast) * M4 + min((m0 >> 2u) + i, M4 - 1u)], k + sid < P.K); }
#elif ${SG}
    var al: array<f32, ${TM}>;
    for (var i = 0u; i < nA; i = i + 1u) { al[i] = select(0.0, A[aB + min(k + sid, kLast) * P.M + min(m0 + i, P.M - 1u)], k + sid < P.K); }
#elif ${!o.transA && o.vecA}
${rep(TM, (i) => rep(KU / 4, (q) => `    let av${i}_${q} = ${kGuard(4 * q, `A[ra${i} + min((k >> 2u) + ${q}u, k4Last)]`, Z4)};`))}
#elif ${!o.transA}
${rep(TM, (i) => rep(KU, (u) => `    let a${i}_${u} = ${kGuard(u, `A[ra${i} + ${kIdx(`${u}u`)}]`, '0.0')};`))}
#elif ${o.vecA}
${rep(KU, (u) => rep(TM / 4, (p) => `    let at${u}_${p} = ${kGuard(u, `A[a4B + ${kIdx(`${u}u`)} * M4 + ga${p}]`, Z4)};`))}
#else
${rep(KU, (u) => rep(TM, (i) => `    let a${i}_${u} = ${kGuard(u, `A[aB + ${kIdx(`${u}u`)} * P.M + ma${i}]`, '0.0')};`))}
#endif
    // B: bv{u}_{g} = op(B)(k + u, n0 + W·g … n0 + W·g + W - 1), zero past K.
#if ${SG && !o.vecB}
    // Scalar B (odd shapes): one load site in loops over the block's k's and the lane's columns.
    var bl: array<f32, ${KU * TN}>;
    for (var u = 0u; u < nU; u = u + 1u) {
      for (var j = 0u; j < nJ; j = j + 1u) {
#if ${o.transB}
        bl[u * ${TN}u + j] = select(0.0, B[bB + min(n0 + j, P.N - 1u) * P.K + min(k + u, kLast)], k + u < P.K);
#else
        bl[u * ${TN}u + j] = select(0.0, B[bB + min(k + u, kLast) * P.N + min(n0 + j, P.N - 1u)], k + u < P.K);
#endif
      }
    }
${bvLines((u, g) => vecOf(lanes.map((c) => `bl[${u * TN + W * g + c}]`)))}
#elif ${!o.transB && o.texB}
${bvLines((u, g) => kGuard(u, `textureLoad(B, vec2<u32>(gb${g}, bRow + ${kIdx(`${u}u`)}), 0)`, Z4))}
#elif ${!o.transB && o.vecB}
${bvLines((u, g) => kGuard(u, `B[b4B + ${kIdx(`${u}u`)} * N4 + gb${g}]`, Z4))}
#elif ${!o.transB}
${bvLines((u, g) => kGuard(u, vecOf(lanes.map((c) => `B[bB + ${kIdx(`${u}u`)} * P.N + nb${W * g + c}]`)), splat('0.0')))}
#else
    // Row j of B (column n0 + j of op(B)) is contiguous along k.
#if ${o.texB}
${rep(TN, (j) => rep(KU / 4, (q) => `    let bt${j}_${q} = ${kGuard(4 * q, `textureLoad(B, vec2<u32>(min((k >> 2u) + ${q}u, k4Last), rb${j}), 0)`, Z4)};`))}
#elif ${o.vecB}
${rep(TN, (j) => rep(KU / 4, (q) => `    let bt${j}_${q} = ${kGuard(4 * q, `B[rb${j} + min((k >> 2u) + ${q}u, k4Last)]`, Z4)};`))}
#else
${rep(TN, (j) => rep(KU, (u) => `    let bs${j}_${u} = ${kGuard(u, `B[rb${j} + ${kIdx(`${u}u`)}]`, '0.0')};`))}
#endif
${bvLines((u, g) => vecOf(lanes.map((c) => btAt(W * g + c, u))))}
#endif
${fmas}
  }
  // Epilogue: the accumulators go to a private array so one loop over rows stores them (one
  // load/store site instead of TM, which keeps lavapipe's compile time down); its bound is opaque
  // (always TM): unrolled, lavapipe would expand TM copies of the stores.
${rep(
  G,
  (g) => `  var bias${g} = ${splat('0.0')};
  if (${hasBias}) { bias${g} = ${o.vecC ? `bias[((z * P.sBias) >> 2u) + min((n0 >> 2u) + ${g}u, (P.N >> 2u) - 1u)]` : vecOf(lanes.map((c) => `bias[z * P.sBias + ${clampCol(`n0 + ${W * g + c}u`)}]`))}; }`,
)}
  var cs: array<${VT}, ${TM * G}>;
${rep(TM, (i) => rep(G, (g) => `  cs[${i * G + g}] = c${i}_${g};`))}
  let rows = select(${TM}u, P.K, P.K == 0xffffffffu);
  for (var i = 0u; i < rows; i = i + 1u) {
    let m = m0 + i;
    if (m < P.M) {
#if ${o.vecC}
${rep(
  G,
  (g) => `      if (n0 + ${4 * g}u < P.N) {
        let ci = ((cB + m * P.N) >> 2u) + (n0 >> 2u) + ${g}u;
        var v = cs[i * ${G}u + ${g}u] + bias${g};
        if (${hasAcc}) { v = v + C[ci]; }
        C[ci] = v;
      }`,
)}
#else
${rep(
  G,
  (g) => `      {
        let v = cs[i * ${G}u + ${g}u] + bias${g};
        let ci = cB + m * P.N + n0 + ${W * g}u;
${rep(W, (c) => `        if (n0 + ${W * g + c}u < P.N) { var w = ${W === 1 ? 'v' : `v[${c}]`}; if (${hasAcc}) { w = w + C[ci + ${c}u]; } C[ci + ${c}u] = w; }`)}
      }`,
)}
#endif
    }
  }
}`;
}

// ------------------------------------------------------------------------------- shared memory

/**
 * WGSL: batch entry, operand bases and the K range of a shared-variant workgroup. Workgroup z is
 * batch entry · splits + split (split-K: see the `splits` and `kChunk` uniforms); C's base is per z.
 */
const SPLIT_BASES = /* wgsl */ `  let z = wid.z / P.splits;
  let aB = z * P.sA;
  let bB = z * P.sB;
  let cB = wid.z * P.sC;
  let kBegin = (wid.z % P.splits) * P.kChunk;
  let kEnd = min(P.K, kBegin + P.kChunk);`;

function sharedBody(o: MatmulKernelOptions): string {
  const T = SHARED_T;
  const R = SHARED_R;
  const TILE = T * R; // 64
  const KT = SHARED_KT;
  const per = (TILE * KT) / (T * T); // elements of each operand tile loaded per thread
  // Software: loops lavapipe would unroll get opaque bounds (always the constant) and `acc` a
  // dynamic index (lavapipe keeps it in memory and compiles fast). Hardware: constant bounds, and
  // the stored row picked with selects so `acc` is only indexed by constants (it stays in registers).
  const sw = !!o.software;
  const pick = Array.from({ length: R - 1 }, (_, i) => i + 1).reduce((e, i) => `select(${e}, acc[${i}], i == ${i}u)`, 'acc[0]');
  const cs = !!o.colsumB;
  if (cs && T * T !== 4 * TILE) throw new Error('matmul: the shared colsum assumes 4 threads per staged column');
  return wgsl`
${accessors(o)}

var<workgroup> As: array<array<f32, ${TILE}>, ${KT}>;
var<workgroup> Bs: array<array<f32, ${TILE}>, ${KT}>;
#if ${cs}
var<workgroup> Ssum: array<f32, ${T * T}>;
#endif

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${SPLIT_BASES}
  let tileM = wid.y * ${TILE}u;
  let tileN = wid.x * ${TILE}u;
  let t = lid.y * WG_X + lid.x;
#if ${sw}
  let nStage = select(${per}u, P.K, P.K == 0xffffffffu);
#else
  let nStage = ${per}u;
#endif
  var acc: array<vec4<f32>, ${R}>;
  for (var i = 0u; i < ${R}u; i = i + 1u) { acc[i] = vec4<f32>(0.0); }
#if ${cs}
  // Thread t sums column t % ${TILE} over k's ${KT / 4}·(t / ${TILE}) .. +${KT / 4} of every staged B tile.
  var bsum = 0.0;
#endif
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${KT}u) {
    for (var r = 0u; r < nStage; r = r + 1u) {
      let e = t + r * ${T * T}u;
      {
        // Coalesced staging: the fastest-varying index follows the operand's contiguous dimension.
#if ${o.transA}
        let mm = e % ${TILE}u; let kk = e / ${TILE}u;
#else
        let kk = e % ${KT}u; let mm = e / ${KT}u;
#endif
        let m = tileM + mm;
        let k = k0 + kk;
        var v = 0.0;
        if (m < P.M && k < kEnd) { v = loadA(aB, m, k); }
        As[kk][mm] = v;
      }
      {
#if ${o.transB}
        let kk = e % ${KT}u; let nn = e / ${KT}u;
#else
        let nn = e % ${TILE}u; let kk = e / ${TILE}u;
#endif
        let n = tileN + nn;
        let k = k0 + kk;
        var v = 0.0;
        if (n < P.N && k < kEnd) { v = loadB(bB, k, n); }
        Bs[kk][nn] = v;
      }
    }
    workgroupBarrier();
#if ${cs}
    if (wid.y == 0u) {
      let q = (t / ${TILE}u) * ${KT / 4}u;
      let cc = t % ${TILE}u;
      bsum = bsum + Bs[q][cc] + Bs[q + 1u][cc] + Bs[q + 2u][cc] + Bs[q + 3u][cc];
    }
#endif
    for (var kk = 0u; kk < ${KT}u; kk = kk + 1u) {
      let a = vec4<f32>(As[kk][lid.y * ${R}u], As[kk][lid.y * ${R}u + 1u], As[kk][lid.y * ${R}u + 2u], As[kk][lid.y * ${R}u + 3u]);
      let b = vec4<f32>(Bs[kk][lid.x * ${R}u], Bs[kk][lid.x * ${R}u + 1u], Bs[kk][lid.x * ${R}u + 2u], Bs[kk][lid.x * ${R}u + 3u]);
      acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
      acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
      acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
      acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
    }
    workgroupBarrier();
  }
#if ${cs}
  if (wid.y == 0u) {
    Ssum[t] = bsum;
    workgroupBarrier();
    if (t < ${TILE}u && tileN + t < P.N) {
      let si = wid.z * P.N + tileN + t;
      var v = Ssum[t] + Ssum[t + ${TILE}u] + Ssum[t + ${2 * TILE}u] + Ssum[t + ${3 * TILE}u];
      if ((P.flags & ${MATMUL_COLSUM_ACCUMULATE}u) != 0u) { v = v + colsum[si]; }
      colsum[si] = v;
    }
  }
#endif
  let mBase = tileM + lid.y * ${R}u;
  let nBase = tileN + lid.x * ${R}u;
  // Stores: one site in loops over the 4×4 sub-tile.
#if ${sw}
  let nR = select(${R}u, P.K, P.K == 0xffffffffu);
#else
  let nR = ${R}u;
#endif
  for (var i = 0u; i < nR; i = i + 1u) {
    let m = mBase + i;
#if ${sw}
    let row = acc[i];
#else
    let row = ${pick};
#endif
    if (m < P.M) {
      for (var j = 0u; j < nR; j = j + 1u) {
        let n = nBase + j;
        if (n < P.N) {
          let ci = cB + m * P.N + n;
          ${storeScalar(o, 'ci', 'n', 'row[j]')}
        }
      }
    }
  }
}`;
}

/**
 * 128×128 output tile per 16×16 workgroup, 8×8 outputs per thread, K tiles of 16 (see the header).
 * Staged tiles: `As[kk·33 + m/4][m%4]` = op(A)(tileM + m, k0 + kk) (likewise Bs for columns), so a
 * thread's four consecutive rows (columns) are one vec4 read. Thread (tx, ty) owns rows
 * ty·4 + {0..3} and 64 + ty·4 + {0..3}, columns tx·4 + {0..3} and 64 + tx·4 + {0..3}.
 */
function shared128Body(o: MatmulKernelOptions): string {
  const PAD = 33; // vec4 per staged k row: 32 + 1
  // Staging of one operand: 128 rows (of M for A, of N for B) × 16 k's, two groups of 4 per thread.
  // kContig (the operand is contiguous along k): thread idx takes 4 consecutive k's of row idx/4
  // and stores them transposed (k-major); else 4 consecutive rows at k = idx/32, one vec4 of the
  // staged tile. Vec4 loads: the contiguous dimension is a multiple of 4, so the 4 values are in
  // range together.
  const stage = (op: 'A' | 'B'): string => {
    const kContig = op === 'A' ? !o.transA : !!o.transB;
    const vec = op === 'A' ? !!o.vecA : !!o.vecB;
    const lim = op === 'A' ? 'P.M' : 'P.N';
    const arr = op === 'A' ? 'As' : 'Bs';
    const bb = op === 'A' ? 'aB' : 'bB';
    // Flat element index of op(x, k) in the operand's own layout.
    const flat = (x: string, k: string): string => (kContig ? `${bb} + (${x}) * P.K + (${k})` : `${bb} + (${k}) * ${lim} + (${x})`);
    const load = (x: string, k: string): string => (op === 'A' ? `loadA(aB, ${x}, ${k})` : `loadB(bB, ${k}, ${x})`);
    const xi = (i: number): string => (kContig ? 'x' : `x + ${i}u`);
    const ki = (i: number): string => (kContig ? `k + ${i}u` : 'k');
    return rep(
      2,
      (g) => wgsl`
  {
    let idx = t + ${g * 256}u;
#if ${kContig}
    let r = idx >> 2u;
    let kk = (idx & 3u) * 4u;
#else
    let r = (idx & 31u) * 4u;
    let kk = idx >> 5u;
#endif
    let x = ${op === 'A' ? 'tileM' : 'tileN'} + r;
    let k = k0 + kk;
    var v = vec4<f32>(0.0);
#if ${vec}
    if (x < ${lim} && k < kEnd) { v = ${op === 'A' && o.geluA ? `gelu_v4(${vec4At(op, o.halfA, `(${flat('x', 'k')}) >> 2u`)})` : vec4At(op, op === 'A' ? o.halfA : o.halfB, `(${flat('x', 'k')}) >> 2u`)}; }
#else
${rep(4, (i) => `    if (${xi(i)} < ${lim} && ${ki(i)} < kEnd) { v[${i}] = ${load(xi(i), ki(i))}; }`)}
#endif
#if ${kContig}
${rep(4, (i) => `    ${arr}[(kk + ${i}u) * ${PAD}u + (r >> 2u)][r & 3u] = v[${i}];`)}
#else
    ${arr}[kk * ${PAD}u + (r >> 2u)] = v;
#endif
  }`,
    );
  };
  const comp = ['x', 'y', 'z', 'w'];
  const epilogue = rep(
    8,
    (i) => wgsl`
  {
    let m = tileM + ${i < 4 ? 0 : 64}u + lid.y * 4u + ${i % 4}u;
    if (m < P.M) {
${rep(
  2,
  (g) => wgsl`
      {
        let n = tileN + ${g * 64}u + lid.x * 4u;
        let ci = cB + m * P.N + n;
#if ${o.vecC}
        if (n < P.N) {
          var v = c${i}_${g};
#if ${!!o.dgeluC}
          v = v * gelu_grad_v4(Z[ci >> 2u]);
#endif
          if ((P.flags & ${MATMUL_BIAS}u) != 0u) { v = v + bias[(z * P.sBias + n) >> 2u]; }
          if ((P.flags & ${MATMUL_ACCUMULATE}u) != 0u) { v = v + C[ci >> 2u]; }
          C[ci >> 2u] = v;
        }
#else
${rep(4, (j) => `        if (n + ${j}u < P.N) ${storeScalar(o, `ci + ${j}u`, `n + ${j}u`, `c${i}_${g}[${j}]`)}`)}
#endif
      }`,
)}
    }
  }`,
  );
  return /* wgsl */ `
${accessors(o)}

var<workgroup> As: array<vec4<f32>, ${16 * PAD}>;
var<workgroup> Bs: array<vec4<f32>, ${16 * PAD}>;
${o.colsumB ? 'var<workgroup> Ssum: array<vec4<f32>, 256>;' : ''}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${SPLIT_BASES}
  let tileM = wid.y * 128u;
  let tileN = wid.x * 128u;
  let t = lid.y * 16u + lid.x;
${rep(8, (i) => `  var c${i}_0 = vec4<f32>(0.0);\n  var c${i}_1 = vec4<f32>(0.0);`)}
${o.colsumB ? '  // colsumB: thread t sums columns 4·(t % 32) .. +3 over k\'s 2·(t / 32) and +1 of every staged B tile.\n  var bsum = vec4<f32>(0.0);' : ''}
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + 16u) {
${stage('A')}
${stage('B')}
    workgroupBarrier();
${
  o.colsumB
    ? `    if (wid.y == 0u) {
      let q = (t >> 5u) * 2u;
      bsum = bsum + Bs[q * ${PAD}u + (t & 31u)] + Bs[(q + 1u) * ${PAD}u + (t & 31u)];
    }`
    : ''
}
    for (var kk = 0u; kk < 16u; kk = kk + 1u) {
      let a0 = As[kk * ${PAD}u + lid.y];
      let a1 = As[kk * ${PAD}u + 16u + lid.y];
      let b0 = Bs[kk * ${PAD}u + lid.x];
      let b1 = Bs[kk * ${PAD}u + 16u + lid.x];
${rep(8, (i) => `      c${i}_0 = fma(vec4<f32>(${i < 4 ? 'a0' : 'a1'}.${comp[i % 4]}), b0, c${i}_0);\n      c${i}_1 = fma(vec4<f32>(${i < 4 ? 'a0' : 'a1'}.${comp[i % 4]}), b1, c${i}_1);`)}
    }
    workgroupBarrier();
  }
${
  o.colsumB
    ? `  if (wid.y == 0u) {
    Ssum[t] = bsum;
    workgroupBarrier();
    if (t < 32u) {
      var v = Ssum[t];
      for (var q = 1u; q < 8u; q = q + 1u) { v = v + Ssum[q * 32u + t]; }
      for (var j = 0u; j < 4u; j = j + 1u) {
        let n = tileN + t * 4u + j;
        if (n < P.N) {
          let si = wid.z * P.N + n;
          var w = v[j];
          if ((P.flags & ${MATMUL_COLSUM_ACCUMULATE}u) != 0u) { w = w + colsum[si]; }
          colsum[si] = w;
        }
      }
    }
  }`
    : ''
}
  // Epilogue.
${epilogue}
}`;
}

/** The matmul kernel for a variant and specialisation (memoised). */
export const matmulKernel = memo((o: MatmulKernelOptions): KernelSpec => {
  const geo = matmulGeometry(o.variant);
  const half = !!(o.halfA || o.halfB);
  const hook = half ? 'half-precision operands' : o.geluA || o.dgeluC ? 'the GELU operand and epilogue' : null;
  if (hook && !OPERAND_HOOK_VARIANTS.includes(o.variant)) throw new Error(`matmul: ${hook} need one of ${OPERAND_HOOK_VARIANTS.join(', ')}; got ${o.variant}`);
  let body: string;
  if (o.variant === 'naive') body = naiveBody(o);
  else if (o.variant === 'shared') body = sharedBody(o);
  else if (o.variant === 'shared128') body = shared128Body(o);
  else body = regBody(o, regParams(o.variant)!);
  return kernel({
    name: specName(o),
    bindings: bindings(o),
    uniforms: MATMUL_UNIFORMS,
    workgroupSize: geo.workgroupSize,
    body,
    ...(regParams(o.variant)?.sg ? { requires: ['subgroups' as const] } : {}),
    ...(o.halfA === 'f16' || o.halfB === 'f16' ? { requires: ['shader-f16' as const] } : {}),
  });
});

/** Invocations per workgroup of the split-K sum. */
export const SPLITK_WG = 256;

/**
 * The second pass of a split-K product: for each of the B products (entry b's partials at
 * (b·S + s)·MN), C[b·MN + i] = Σ_s partial[(b·S + s)·MN + i] (+ bias[i mod N]) (+ C[b·MN + i]),
 * over the M·N elements of each product (vec4 units when N % 4 = 0: then `MN` and `N` are in vec4s),
 * the splits summed in order (deterministic); entry b's bias starts at b·sBias. `colsum`: also
 * colsum[b·N + n] (+)= Σ_s csPartial[(b·S + s)·N + n], the split column sums of a `colsumB` product.
 */
export const splitKSum = memo(({ vec4, colsum = false }: { vec4: boolean; colsum?: boolean }): KernelSpec => {
  const t = vec4 ? 'vec4<f32>' : 'f32';
  return kernel({
    name: `matmul.splitk_sum${vec4 || colsum ? `[${[vec4 ? 'v4' : '', colsum ? 's' : ''].filter(Boolean).join(',')}]` : ''}`,
    bindings: [
      ro('partial', `array<${t}>`),
      ro('bias', `array<${t}>`),
      rw('C', `array<${t}>`),
      ...(colsum ? [ro('csPartial', `array<${t}>`), rw('colsum', `array<${t}>`)] : []),
    ],
    uniforms: [['S', 'u32'], ['MN', 'u32'], ['N', 'u32'], ['flags', 'u32'], ['B', 'u32'], ['sBias', 'u32']],
    workgroupSize: [SPLITK_WG, 1, 1],
    body: wgsl`
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = ${FLAT_INDEX};
#if ${colsum}
  // Column sums: invocations B·MN + b·N + n sum entry b's split column sums csPartial[(b·S + s)·N + n]
  // in order.
  if (j >= P.B * P.MN) {
    let jc = j - P.B * P.MN;
    if (jc >= P.B * P.N) { return; }
    let b = jc / P.N;
    let base = b * P.S * P.N + jc - b * P.N;
    var v = csPartial[base];
    for (var s = 1u; s < P.S; s = s + 1u) { v = v + csPartial[base + s * P.N]; }
    if ((P.flags & ${MATMUL_COLSUM_ACCUMULATE}u) != 0u) { v = v + colsum[jc]; }
    colsum[jc] = v;
    return;
  }
#endif
  if (j >= P.B * P.MN) { return; }
  let b = j / P.MN;
  let i = j - b * P.MN;
  let base = b * P.S * P.MN + i;
  var v = partial[base];
  for (var s = 1u; s < P.S; s = s + 1u) { v = v + partial[base + s * P.MN]; }
  if ((P.flags & ${MATMUL_BIAS}u) != 0u) { v = v + bias[b * P.sBias + i % P.N]; }
  if ((P.flags & ${MATMUL_ACCUMULATE}u) != 0u) { v = v + C[j]; }
  C[j] = v;
}`,
  });
});

// ------------------------------------------------------------------------------------- colsum

/** Rows summed by one invocation of the first colsum pass. */
export const COLSUM_CHUNK = 64;
export const COLSUM_WG = 64;

/**
 * Column sums of X [R, N] (row-major): out[n] = Σ_r X[r, n] (+ out[n] with `accumulate`).
 * Two passes keep it parallel and deterministic (no atomics): `colsumPartial` writes per-chunk
 * sums partial[c, n] = Σ_{r in chunk c} X[r, n] (chunks of `chunk` rows, in row order: COLSUM_CHUNK,
 * or about √R on hardware adapters so neither pass runs a long serial loop);
 * `colsumFinal` adds the chunks in order. With one chunk, `colsumFinal` alone reads X directly
 * (X is then its own "partials" with `chunks` = R).
 * vec4 along N when N % 4 = 0 (then `N` is given in vec4 units).
 */
export const colsumPartial = memo(({ vec4 }: { vec4: boolean }): KernelSpec => {
  const t = vec4 ? 'vec4<f32>' : 'f32';
  return kernel({
    name: `matmul.colsum.partial${vec4 ? '[v4]' : ''}`,
    bindings: [ro('X', `array<${t}>`), rw('partial', `array<${t}>`)],
    uniforms: [['R', 'u32'], ['N', 'u32'], ['chunk', 'u32']],
    workgroupSize: [COLSUM_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let c = gid.y;
  if (n >= P.N) { return; }
  let r0 = c * P.chunk;
  let r1 = min(r0 + P.chunk, P.R);
  var s = ${t}(0.0);
  var r = r0;
  for (; r + 4u <= r1; r = r + 4u) {
    s = s + X[r * P.N + n];
    s = s + X[(r + 1u) * P.N + n];
    s = s + X[(r + 2u) * P.N + n];
    s = s + X[(r + 3u) * P.N + n];
  }
  for (; r < r1; r = r + 1u) { s = s + X[r * P.N + n]; }
  partial[c * P.N + n] = s;
}`,
  });
});

export const colsumFinal = memo(({ vec4, accumulate }: { vec4: boolean; accumulate: boolean }): KernelSpec => {
  const t = vec4 ? 'vec4<f32>' : 'f32';
  return kernel({
    name: `matmul.colsum.final${vec4 || accumulate ? `[${[vec4 ? 'v4' : '', accumulate ? 'acc' : ''].filter(Boolean).join(',')}]` : ''}`,
    bindings: [ro('partial', `array<${t}>`), rw('out', `array<${t}>`)],
    uniforms: [['chunks', 'u32'], ['N', 'u32']],
    workgroupSize: [COLSUM_WG, 1, 1],
    body: wgsl`
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= P.N) { return; }
  var s = ${t}(0.0);
  for (var c = 0u; c < P.chunks; c = c + 1u) { s = s + partial[c * P.N + n]; }
#if ${accumulate}
  out[n] = out[n] + s;
#else
  out[n] = s;
#endif
}`,
  });
});
