/**
 * Fused causal multi-head attention (GPT-2 semantics), forward and backward, reading q, k, v straight
 * out of the fused projection `qkv` [B, T, 3d] and writing y as [B, T, d] (no split/merge transposes).
 * See docs/kernels/attention.md.
 *
 * Layout. Row (b, t) of qkv starts at (b·T + t)·3d; head h of q is channels h·hd..h·hd+hd-1, of k
 * d + h·hd.., of v 2d + h·hd... y row (b, t) starts at (b·T + t)·d, head h at h·hd. The per-row
 * logsumexp `lse` is [B, H, T]; `D` (backward) is [B, H, T] too. dqkv has the layout of qkv.
 *
 * Algorithm (flash style, no T×T matrix in memory). The forward keeps a running max m, a running
 * sum l and an unnormalised accumulator per query row (online softmax) and stores lse = m + log l.
 * The backward recomputes P_ij = exp(s_ij − lse_i) in two kernels, without atomics:
 *   - dq, per query row i: D_i = dY_i·Y_i (written for the next kernel) and
 *     dq_i = scale · Σ_j P_ij (Z_ij dY_i·v_j − D_i) k_j
 *   - dkv, per key row j: dv_j = Σ_i P_ij Z_ij dY_i,  dk_j = scale · Σ_i P_ij (Z_ij dY_i·v_j − D_i) q_i
 * where Z_ij is the dropout factor (0 or 1/(1−p); 1 without dropout). Every output element is
 * written by exactly one invocation, so results are bitwise deterministic.
 *
 * Masks. Causal: keys j > i get probability 0. Key padding (optional f32 [B, T], 1 = attend,
 * 0 = padded; a runtime flag `useMask`, so one pipeline serves both): padded keys get probability 0.
 * A row whose keys are all masked has y = 0, lse = 1e30 (a sentinel that makes every recomputed P
 * zero) and zero gradients.
 *
 * Dropout (optional, on the probabilities after normalisation). Philox4x32-10 from random.ts with
 * key = (seed, step) and counter = (lo(g), stream, hi(g), 0), g = row·⌈T/4⌉ + ⌊j/4⌋ where
 * row = (b·H + h)·T + i: one Philox call covers the 4 keys 4⌊j/4⌋..4⌊j/4⌋+3 of a query row, key j uses
 * component j mod 4 (x, y, z, w). u = (x >> 8) / 2^24; the key is kept when u ≥ p and then scaled by
 * 1/(1−p). g is a 64-bit value split into two u32 words (lo, hi), so any size is fine.
 *
 * Variants (side by side; engine/ops/attention.ts chooses):
 *   - `ref`  : scalar, one key at a time, any head dim (also the non-multiple-of-4 fallback), a
 *              separate D kernel; the readable reference.
 *   - `row`  : one invocation per query row (forward, dq) or key row (dkv), the head dim unrolled in
 *              vec4 registers, blocks of kb keys (queries). K/V straight from global memory.
 *   - `tiled`: the same per-row arithmetic, but each tile of keys (forward, dq) or queries (dkv) is
 *              copied into workgroup memory once by the whole workgroup and every invocation reads
 *              it from there (real GPUs; the default on hardware).
 *   - `sg`   : lavapipe's default: one subgroup per workgroup; the K/V (or Q/dY) rows of a block are
 *              loaded once, one row per lane, and handed to the other lanes with subgroupShuffle —
 *              on lavapipe a load inside a loop costs several times a shuffle (one vpermd); see
 *              docs/performance.md, roofline section.
 *              `backwardFusedSg`: dq, dk and dv in one kernel for rows of T ≤ 8R (one workgroup per
 *              (b, h)), each pair's probability computed once; the software plan's backward for
 *              short rows at small head dims (engine/plan.ts, `sgFusedBackwardRows`).
 *   - `block`: flash-attention-2 style register tiles: a workgroup owns a block of rows, the other
 *              side streams through workgroup memory a block at a time, and scores, P·V, dS·K,
 *              Pᵀ·dY and dSᵀ·Q run as small matrix products in which each lane holds 4 rows × a few
 *              columns, so every value read from workgroup memory feeds 4–8 FMAs instead of one.
 *              hd a multiple of 64, no dropout; the hardware plan's default where it runs.
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { PHILOX_WGSL } from './random.ts';
import { FLAT_INDEX, kernel, memo, ro, rw, tex, type BindingDecl, type KernelSpec } from './spec.ts';

export const ATTN_REF_WG = 64;
/** Score assigned to a masked key before the select that zeroes its probability. */
const NEG = '-1e30';
/** lse of a row with no visible key: exp(s − 1e30) = 0 for every recomputed probability. */
const LSE_EMPTY = '1e30';

const rep = (n: number, f: (c: number) => string, sep = '\n'): string => Array.from({ length: n }, (_, c) => f(c)).join(sep);

interface Common {
  /** Attention dropout compiled in. */
  dropout: boolean;
}

const DROPOUT_UNIFORMS: [string, 'u32' | 'f32'][] = [
  ['seed', 'u32'],
  ['step', 'u32'],
  ['stream', 'u32'],
  ['p', 'f32'],
  ['keepScale', 'f32'],
];

/**
 * WGSL: dropout factors (0 or 1/(1−p)). One Philox call gives the factors of keys 4·j4..4·j4+3 of
 * query row `row` = (b·H + h)·T + i (component j mod 4).
 */
const DROPOUT_WGSL = /* wgsl */ `${PHILOX_WGSL}
fn drop_keep4(row: u32, j4: u32) -> vec4<f32> {
  let hl = philox_mulhilo(row, (P.T + 3u) / 4u);
  let lo = hl.y + j4;
  let hi = hl.x + select(0u, 1u, lo < j4);
  let u = philox_uniform4(vec4<u32>(lo, P.stream, hi, 0u), vec2<u32>(P.seed, P.step));
  return select(vec4<f32>(0.0), vec4<f32>(P.keepScale), u >= vec4<f32>(P.p));
}
fn drop_keep1(row: u32, j: u32) -> f32 {
  let z = drop_keep4(row, j >> 2u);
  return z[j & 3u];
}
`;

const tag = (o: Common): string => (o.dropout ? '.dropout' : '');

// ======================================================================================= ref

const REF_UNIFORMS: [string, 'u32' | 'f32'][] = [
  ['T', 'u32'],
  ['H', 'u32'],
  ['hd', 'u32'],
  ['d', 'u32'],
  ['rows', 'u32'],
  ['scale', 'f32'],
  ['useMask', 'u32'],
];

/** Shared prologue of the ref kernels: decode the flat index into (b, h, row t) and base offsets. */
const REF_PROLOGUE = /* wgsl */ `
  let idx = ${FLAT_INDEX};
  if (idx >= P.rows) { return; }
  let t = idx % P.T;
  let bh = idx / P.T;
  let b = bh / P.H;
  let h = bh % P.H;
  let rs = 3u * P.d;
  let base = b * P.T * rs;
  let qc = base + h * P.hd;          // + row·rs: q of that row
  let kc = qc + P.d;
  let vc = kc + P.d;`;

const refKeyOk = (j: string): string => `(P.useMask == 0u || kmask[b * P.T + ${j}] > 0.5)`;

/** Reference forward: scalar, three passes over the keys (max, sum, weighted sum). */
export const forwardRef = memo((o: Common): KernelSpec =>
  kernel({
    name: `attention.fwd.ref${tag(o)}`,
    bindings: [ro('qkv'), ro('kmask'), rw('y'), rw('lse')],
    uniforms: [...REF_UNIFORMS, ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [ATTN_REF_WG, 1, 1],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
fn score(qo: u32, ko: u32) -> f32 {
  var s = 0.0;
  for (var c = 0u; c < P.hd; c = c + 1u) { s = s + qkv[qo + c] * qkv[ko + c]; }
  return s * P.scale;
}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${REF_PROLOGUE}
  let i = t;
  let qo = qc + i * rs;
  let yo = (b * P.T + i) * P.d + h * P.hd;
  var m = ${NEG};
  var seen = false;
  for (var j = 0u; j <= i; j = j + 1u) {
    if (${refKeyOk('j')}) { m = max(m, score(qo, kc + j * rs)); seen = true; }
  }
  var l = 0.0;
  for (var j = 0u; j <= i; j = j + 1u) {
    if (${refKeyOk('j')}) { l = l + exp(score(qo, kc + j * rs) - m); }
  }
  for (var c = 0u; c < P.hd; c = c + 1u) { y[yo + c] = 0.0; }
  if (!seen) { lse[idx] = ${LSE_EMPTY}; return; }
  for (var j = 0u; j <= i; j = j + 1u) {
    if (${refKeyOk('j')}) {
#if ${o.dropout}
      let pr = exp(score(qo, kc + j * rs) - m) / l * drop_keep1(idx, j);
#else
      let pr = exp(score(qo, kc + j * rs) - m) / l;
#endif
      for (var c = 0u; c < P.hd; c = c + 1u) { y[yo + c] = y[yo + c] + pr * qkv[vc + j * rs + c]; }
    }
  }
  lse[idx] = m + log(l);
}`,
  }),
);

/** Reference backward, step 1: D_i = dY_i · Y_i per (b, h, i). */
export const backwardRefD = memo((_o: Record<string, never>): KernelSpec =>
  kernel({
    name: 'attention.bwd.ref.D',
    bindings: [ro('y'), ro('dy'), rw('dD')],
    uniforms: REF_UNIFORMS,
    workgroupSize: [ATTN_REF_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${REF_PROLOGUE}
  let yo = (b * P.T + t) * P.d + h * P.hd;
  var s = 0.0;
  for (var c = 0u; c < P.hd; c = c + 1u) { s = s + y[yo + c] * dy[yo + c]; }
  dD[idx] = s;
}`,
  }),
);

/** Reference backward, step 2: dq of query row i (into the q slots of dqkv). */
export const backwardRefDq = memo((o: Common): KernelSpec =>
  kernel({
    name: `attention.bwd.ref.dq${tag(o)}`,
    bindings: [ro('qkv'), ro('kmask'), ro('dy'), ro('lse'), ro('dD'), rw('dqkv')],
    uniforms: [...REF_UNIFORMS, ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [ATTN_REF_WG, 1, 1],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${REF_PROLOGUE}
  let i = t;
  let qo = qc + i * rs;
  let yo = (b * P.T + i) * P.d + h * P.hd;
  let L = lse[idx];
  let Di = dD[idx];
  for (var c = 0u; c < P.hd; c = c + 1u) { dqkv[qo + c] = 0.0; }
  for (var j = 0u; j <= i; j = j + 1u) {
    if (!(${refKeyOk('j')})) { continue; }
    var s = 0.0;
    var dp = 0.0;
    for (var c = 0u; c < P.hd; c = c + 1u) {
      s = s + qkv[qo + c] * qkv[kc + j * rs + c];
      dp = dp + dy[yo + c] * qkv[vc + j * rs + c];
    }
    let pr = exp(s * P.scale - L);
#if ${o.dropout}
    let ds = pr * (dp * drop_keep1(idx, j) - Di) * P.scale;
#else
    let ds = pr * (dp - Di) * P.scale;
#endif
    for (var c = 0u; c < P.hd; c = c + 1u) { dqkv[qo + c] = dqkv[qo + c] + ds * qkv[kc + j * rs + c]; }
  }
}`,
  }),
);

/** Reference backward, step 3: dk and dv of key row j (into the k and v slots of dqkv). */
export const backwardRefDkv = memo((o: Common): KernelSpec =>
  kernel({
    name: `attention.bwd.ref.dkv${tag(o)}`,
    bindings: [ro('qkv'), ro('kmask'), ro('dy'), ro('lse'), ro('dD'), rw('dqkv')],
    uniforms: [...REF_UNIFORMS, ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [ATTN_REF_WG, 1, 1],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${REF_PROLOGUE}
  let j = t;
  let ko = kc + j * rs;
  let vo = vc + j * rs;
  for (var c = 0u; c < P.hd; c = c + 1u) { dqkv[ko + c] = 0.0; dqkv[vo + c] = 0.0; }
  if (!(${refKeyOk('j')})) { return; }
  for (var i = j; i < P.T; i = i + 1u) {
    let row = bh * P.T + i;
    let qo = qc + i * rs;
    let yo = (b * P.T + i) * P.d + h * P.hd;
    var s = 0.0;
    var dp = 0.0;
    for (var c = 0u; c < P.hd; c = c + 1u) {
      s = s + qkv[qo + c] * qkv[ko + c];
      dp = dp + dy[yo + c] * qkv[vo + c];
    }
    let pr = exp(s * P.scale - lse[row]);
#if ${o.dropout}
    let z = drop_keep1(bh * P.T + i, j);
#else
    let z = 1.0;
#endif
    let ds = pr * (dp * z - dD[row]) * P.scale;
    for (var c = 0u; c < P.hd; c = c + 1u) {
      dqkv[vo + c] = dqkv[vo + c] + pr * z * dy[yo + c];
      dqkv[ko + c] = dqkv[ko + c] + ds * qkv[qo + c];
    }
  }
}`,
  }),
);

// ======================================================================================= row / tiled

export interface FastOptions extends Common {
  /** Head dim, a multiple of 4 (compiled in: registers are unrolled vec4s). */
  hd: number;
  /** Workgroup size (query or key rows per workgroup), a multiple of 4. */
  wg: number;
  /** 'row': K/V read from global memory; 'tiled': staged through workgroup memory. */
  tiled: boolean;
  /** Keys (forward, dq) or queries (dkv) per unrolled block: 1, 2 or 4. */
  kb: number;
  /** Tiled: rows per workgroup-memory tile (a multiple of 4; default from wg and hd). */
  tile?: number;
}

const FAST_UNIFORMS: [string, 'u32' | 'f32'][] = [
  ['T', 'u32'],
  ['H', 'u32'],
  ['d4', 'u32'],
  ['BH', 'u32'],
  ['scale', 'f32'],
  ['useMask', 'u32'],
];

/** qkv as the vec4 kernels (row/tiled, sg, block) read it: a buffer, or (sg) a texture. */
const qkvBinding = (texture = false): BindingDecl => (texture ? tex('qkv') : ro('qkv', 'array<vec4<f32>>'));
/** Bindings of the vec4 kernels: forward, backward query side (writes D), backward key side (reads it). */
const fwdBindings = (texture = false): BindingDecl[] => [qkvBinding(texture), ro('kmask'), rw('y', 'array<vec4<f32>>'), rw('lse')];
const dqBindings = (texture = false): BindingDecl[] => [
  qkvBinding(texture),
  ro('kmask'),
  ro('y', 'array<vec4<f32>>'),
  ro('dy', 'array<vec4<f32>>'),
  ro('lse'),
  rw('dD'),
  rw('dqkv', 'array<vec4<f32>>'),
];
const dkvBindings = (texture = false): BindingDecl[] => [qkvBinding(texture), ro('kmask'), ro('dy', 'array<vec4<f32>>'), ro('lse'), ro('dD'), rw('dqkv', 'array<vec4<f32>>')];

/** Prologue of the row/tiled kernels: workgroup (x = row block, y/z = b·H + h), lane = row. */
const fastPrologue = (nv: number): string => /* wgsl */ `
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= P.BH) { return; }
  let r0 = wid.x * WG_X;             // first row of this workgroup
  let r = r0 + lid.x;                // this invocation's row (query row for fwd/dq, key row for dkv)
  let rc = min(r, P.T - 1u);         // clamped: loads stay in bounds, stores are guarded
  let b = bh / P.H;
  let h = bh - b * P.H;
  let rs = 3u * P.d4;                // qkv row stride in vec4s
  let base = b * P.T * rs;
  let qcol = base + h * ${nv}u;      // + t·rs: q of row t
  let kcol = qcol + P.d4;
  let vcol = kcol + P.d4;
  let ycol = b * P.T * P.d4 + h * ${nv}u;   // + t·d4: y of row t
  let tm1 = P.T - 1u;`;

const TILE_UNIFORM: [string, 'u32'][] = [['tile', 'u32']];

/** Rows per workgroup-memory tile of the tiled variant (two arrays of tile × hd floats); pass it as the `tile` uniform. */
export function tileRows(o: FastOptions): number {
  if (o.tile) return o.tile;
  // Stay within the 16 KiB WebGPU default for workgroup storage; at least one block of 4.
  const byHd = Math.floor(16384 / (2 * o.hd * 4));
  let n = 4;
  while (n * 2 <= Math.min(o.wg, byHd)) n *= 2;
  return n;
}

const fastName = (kind: string, o: FastOptions): string =>
  `attention.${kind}.${o.tiled ? 'tiled' : 'row'}[hd${o.hd},wg${o.wg},kb${o.kb}${o.tiled ? `,tile${tileRows(o)}` : ''}]${tag(o)}`;

function checkFast(o: FastOptions): number {
  const nv = o.hd / 4;
  if (!Number.isInteger(nv) || nv < 1) throw new Error(`attention: fast kernels need hd % 4 == 0 (got ${o.hd})`);
  if (![1, 2, 4].includes(o.kb)) throw new Error(`attention: kb must be 1, 2 or 4 (got ${o.kb})`);
  if (o.wg % 4 !== 0) throw new Error(`attention: wg must be a multiple of 4 (got ${o.wg})`);
  if (o.tiled && tileRows(o) % 4 !== 0) throw new Error('attention: tile must be a multiple of 4');
  return nv;
}

type At = (a: 0 | 1, t: number, c: number) => string;

/**
 * Row/tiled variants. The loop `v = start, start + kb, … < end` over key (or query) rows in blocks of kb.
 * `g(a, row, c)` is the global-memory expression of vec4 c of `row` in array a (0 or 1).
 * Row variant: blocks read global memory directly. Tiled variant: tiles of `tile` rows of both arrays
 * are first copied into workgroup memory (tl0, tl1) by the whole workgroup between two barriers.
 * Inside a block, `${v}r_t` = min(v + t, T − 1) is the clamped row and `at(a, t, c)` reads it.
 */
function rowLoop(o: FastOptions, nv: number, v: string, start: string, end: string, g: (a: 0 | 1, row: string, c: number) => string, block: (at: At) => string): string {
  const rows = rep(o.kb, (t) => `let ${v}r_${t} = min(${v} + ${t}u, tm1);`, ' ');
  if (!o.tiled) {
    return /* wgsl */ `
  for (var ${v} = ${start}; ${v} < ${end}; ${v} = ${v} + ${o.kb}u) {
    ${rows}${block((a, t, c) => g(a, `${v}r_${t}`, c))}
  }`;
  }
  const tile = tileRows(o);
  return /* wgsl */ `
  for (var ${v}0 = ${start}; ${v}0 < ${end}; ${v}0 = ${v}0 + ${tile}u) {
    workgroupBarrier();
    for (var e = lid.x; e < ${tile * nv}u; e = e + WG_X) {
      let row = min(${v}0 + e / ${nv}u, tm1);
      let c = e % ${nv}u;
      tl0[e] = ${g(0, 'row', -1)};
      tl1[e] = ${g(1, 'row', -1)};
    }
    workgroupBarrier();
    let nb = min(${end} - ${v}0, P.tile);     // P.tile == ${tile}: a uniform, so the loop stays rolled
    for (var ${v}t = 0u; ${v}t < nb; ${v}t = ${v}t + ${o.kb}u) {
      let ${v} = ${v}0 + ${v}t;
      ${rows}${block((a, t, c) => `tl${a}[(${v}t + ${t}u) * ${nv}u + ${c}u]`)}
    }
  }`;
}

/** Column offset `c` (a constant, or the runtime `c` of the tile loader when c < 0). */
const col = (c: number): string => (c < 0 ? 'c' : `${c}u`);

const tileDecl = (o: FastOptions, nv: number): string =>
  o.tiled ? `var<workgroup> tl0: array<vec4<f32>, ${tileRows(o) * nv}>;\nvar<workgroup> tl1: array<vec4<f32>, ${tileRows(o) * nv}>;` : '';

/** Dropout factors of keys j..j+kb−1 of query row `rc` into z_t (one Philox call when kb = 4). */
function dropKeys(kb: number, v: string): string {
  if (kb === 4) return `let z = drop_keep4(bh * P.T + rc, ${v} >> 2u); ${rep(4, (t) => `let z_${t} = z[${t}];`, ' ')}`;
  return rep(kb, (t) => `let z_${t} = drop_keep1(bh * P.T + rc, ${v} + ${t}u);`, ' ');
}

const maxOf = (xs: string[]): string => (xs.length === 1 ? xs[0]! : `max(${maxOf(xs.slice(0, xs.length >> 1))}, ${maxOf(xs.slice(xs.length >> 1))})`);

/**
 * Forward, one invocation per query row: q·scale and the output accumulator in NV = hd/4 vec4
 * registers, keys in blocks of kb (one rescale per block). The key loop runs to the workgroup's last
 * row (a uniform bound: every invocation reads the same K/V rows, which the tiled variant stages in
 * workgroup memory); keys past an invocation's own row are masked by select.
 */
export const forwardFast = memo((o: FastOptions): KernelSpec => {
  const nv = checkFast(o);
  const keys = (f: (t: number) => string, sep = '\n    '): string => rep(o.kb, f, sep);
  const g = (a: 0 | 1, row: string, c: number): string => `qkv[${a === 0 ? 'kcol' : 'vcol'} + ${row} * rs + ${col(c)}]`;
  const block = (at: At): string => wgsl`
    ${keys((t) => `let ok${t} = j + ${t}u <= r && (P.useMask == 0u || kmask[b * P.T + jr_${t}] > 0.5);`)}
    ${keys((t) => `let s${t} = select(${NEG}, ${rep(nv, (c) => `dot(q${c}, ${at(0, t, c)})`, ' + ')}, ok${t});`)}
    let mn = max(m, ${maxOf(rep(o.kb, (t) => `s${t}`, ',').split(','))});
    let alpha = exp(m - mn);
    ${keys((t) => `var p${t} = select(0.0, exp(s${t} - mn), ok${t});`)}
    l = l * alpha + ${keys((t) => `p${t}`, ' + ')};
#if ${o.dropout}
    ${dropKeys(o.kb, 'j')}
    ${keys((t) => `p${t} = p${t} * z_${t};`, ' ')}
#endif
    ${rep(nv, (c) => `a${c} = a${c} * alpha + ${keys((t) => `p${t} * ${at(1, t, c)}`, ' + ')};`, '\n    ')}
    m = mn;`;
  return kernel({
    name: fastName('fwd', o),
    bindings: fwdBindings(),
    uniforms: [...FAST_UNIFORMS, ...(o.tiled ? TILE_UNIFORM : []), ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [o.wg, 1, 1],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
${tileDecl(o, nv)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${fastPrologue(nv)}
  let qo = qcol + rc * rs;
  ${rep(nv, (c) => `let q${c} = qkv[qo + ${c}u] * P.scale;`, '\n  ')}
  ${rep(nv, (c) => `var a${c} = vec4<f32>(0.0);`, '\n  ')}
  var m = ${NEG};
  var l = 0.0;
  let jend = min(r0 + WG_X, P.T);    // uniform over the workgroup
  ${rowLoop(o, nv, 'j', '0u', 'jend', g, block)}
  if (r < P.T) {
    let yo = ycol + r * P.d4;
    let inv = select(0.0, 1.0 / l, l > 0.0);
    ${rep(nv, (c) => `y[yo + ${c}u] = a${c} * inv;`, '\n    ')}
    lse[bh * P.T + r] = select(${LSE_EMPTY}, m + log(l), l > 0.0);
  }
}`,
  });
});

/**
 * Backward, query side: one invocation per query row i. Writes D_i = dY_i·Y_i (for the dkv kernel)
 * and dq_i into the q slots of dqkv.
 */
export const backwardDqFast = memo((o: FastOptions): KernelSpec => {
  const nv = checkFast(o);
  const keys = (f: (t: number) => string, sep = '\n    '): string => rep(o.kb, f, sep);
  const g = (a: 0 | 1, row: string, c: number): string => `qkv[${a === 0 ? 'kcol' : 'vcol'} + ${row} * rs + ${col(c)}]`;
  const block = (at: At): string => wgsl`
    ${keys((t) => `let ok${t} = j + ${t}u <= r && (P.useMask == 0u || kmask[b * P.T + jr_${t}] > 0.5);`)}
    ${keys((t) => rep(nv, (c) => `let k${t}_${c} = ${at(0, t, c)};`, ' '))}
    ${keys((t) => `let p${t} = select(0.0, exp((${rep(nv, (c) => `dot(q${c}, k${t}_${c})`, ' + ')}) * P.scale - L), ok${t});`)}
    ${keys((t) => `var dp${t} = ${rep(nv, (c) => `dot(g${c}, ${at(1, t, c)})`, ' + ')};`)}
#if ${o.dropout}
    ${dropKeys(o.kb, 'j')}
    ${keys((t) => `dp${t} = dp${t} * z_${t};`, ' ')}
#endif
    ${keys((t) => `let ds${t} = p${t} * (dp${t} - Di);`)}
    ${rep(nv, (c) => `dq${c} = dq${c} + ${keys((t) => `ds${t} * k${t}_${c}`, ' + ')};`, '\n    ')}`;
  return kernel({
    name: fastName('bwd.dq', o),
    bindings: dqBindings(),
    uniforms: [...FAST_UNIFORMS, ...(o.tiled ? TILE_UNIFORM : []), ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [o.wg, 1, 1],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
${tileDecl(o, nv)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${fastPrologue(nv)}
  let qo = qcol + rc * rs;
  let yo = ycol + rc * P.d4;
  ${rep(nv, (c) => `let q${c} = qkv[qo + ${c}u];`, '\n  ')}
  ${rep(nv, (c) => `let g${c} = dy[yo + ${c}u];`, '\n  ')}
  ${rep(nv, (c) => `var dq${c} = vec4<f32>(0.0);`, '\n  ')}
  let Di = ${rep(nv, (c) => `dot(g${c}, y[yo + ${c}u])`, ' + ')};
  let L = lse[bh * P.T + rc];
  let jend = min(r0 + WG_X, P.T);
  ${rowLoop(o, nv, 'j', '0u', 'jend', g, block)}
  if (r < P.T) {
    dD[bh * P.T + r] = Di;
    ${rep(nv, (c) => `dqkv[qo + ${c}u] = dq${c} * P.scale;`, '\n    ')}
  }
}`,
  });
});

/**
 * Backward, key side: one invocation per key row j, looping over the query rows from the first row
 * of its workgroup to T − 1 in blocks of kb. Writes dk_j and dv_j into the k and v slots of dqkv.
 * Needs D from the dq kernel.
 */
export const backwardDkvFast = memo((o: FastOptions): KernelSpec => {
  const nv = checkFast(o);
  const qs = (f: (t: number) => string, sep = '\n    '): string => rep(o.kb, f, sep);
  const g = (a: 0 | 1, row: string, c: number): string => (a === 0 ? `qkv[qcol + ${row} * rs + ${col(c)}]` : `dy[ycol + ${row} * P.d4 + ${col(c)}]`);
  const block = (at: At): string => wgsl`
    ${qs((t) => `let ok${t} = i + ${t}u >= r && i + ${t}u <= tm1 && keyOk;`)}
    ${qs((t) => rep(nv, (c) => `let q${t}_${c} = ${at(0, t, c)};`, ' '))}
    ${qs((t) => rep(nv, (c) => `let g${t}_${c} = ${at(1, t, c)};`, ' '))}
    ${qs((t) => `let p${t} = select(0.0, exp((${rep(nv, (c) => `dot(k${c}, q${t}_${c})`, ' + ')}) * P.scale - lse[bh * P.T + ir_${t}]), ok${t});`)}
    ${qs((t) => `var dp${t} = ${rep(nv, (c) => `dot(v${c}, g${t}_${c})`, ' + ')};`)}
#if ${o.dropout}
    ${qs((t) => `let z_${t} = drop_keep1(bh * P.T + i + ${t}u, rc); dp${t} = dp${t} * z_${t}; let pz${t} = p${t} * z_${t};`)}
#else
    ${qs((t) => `let pz${t} = p${t};`, ' ')}
#endif
    ${qs((t) => `let ds${t} = p${t} * (dp${t} - dD[bh * P.T + ir_${t}]);`)}
    ${rep(nv, (c) => `dv${c} = dv${c} + ${qs((t) => `pz${t} * g${t}_${c}`, ' + ')};`, '\n    ')}
    ${rep(nv, (c) => `dk${c} = dk${c} + ${qs((t) => `ds${t} * q${t}_${c}`, ' + ')};`, '\n    ')}`;
  return kernel({
    name: fastName('bwd.dkv', o),
    bindings: dkvBindings(),
    uniforms: [...FAST_UNIFORMS, ...(o.tiled ? TILE_UNIFORM : []), ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [o.wg, 1, 1],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
${tileDecl(o, nv)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${fastPrologue(nv)}
  let ko = kcol + rc * rs;
  let vo = vcol + rc * rs;
  ${rep(nv, (c) => `let k${c} = qkv[ko + ${c}u];`, '\n  ')}
  ${rep(nv, (c) => `let v${c} = qkv[vo + ${c}u];`, '\n  ')}
  ${rep(nv, (c) => `var dk${c} = vec4<f32>(0.0);`, '\n  ')}
  ${rep(nv, (c) => `var dv${c} = vec4<f32>(0.0);`, '\n  ')}
  let keyOk = P.useMask == 0u || kmask[b * P.T + rc] > 0.5;
  ${rowLoop(o, nv, 'i', 'r0', 'P.T', g, block)}
  if (r < P.T) {
    ${rep(nv, (c) => `dqkv[ko + ${c}u] = dk${c} * P.scale;`, '\n    ')}
    ${rep(nv, (c) => `dqkv[vo + ${c}u] = dv${c};`, '\n    ')}
  }
}`,
  });
});

// ======================================================================================= sg (subgroup-shared loads)

export interface SubgroupOptions extends Common {
  /** Head dim, a multiple of 4. */
  hd: number;
  /** Subgroup size = workgroup size (a power of two). */
  sg: number;
  /**
   * Lanes per row, C: each owned row's vectors are split over C lanes of hd/C channels (a power of
   * two dividing sg and hd/4). Keeps registers and generated code small at large head dims.
   */
  split: number;
  /**
   * Read qkv [B·T, 3d] through an rgba32float texture of 3d/4 × B·T texels instead of a storage
   * buffer (lavapipe's texel fetch clamps with SIMD instead of branching per lane).
   */
  tex?: boolean;
  /**
   * Rows per lane, R (with split = 1): each lane owns R rows, sg apart, so every K/V (or Q/dY) row
   * loaded serves R·sg rows. Halves the loads per (query, key) pair at small head dims.
   */
  rowsPerLane: number;
}

const sgName = (kind: string, o: SubgroupOptions): string =>
  `attention.${kind}.sg[hd${o.hd},sg${o.sg}${o.split > 1 ? `,split${o.split}` : ''}${o.rowsPerLane > 1 ? `,rows${o.rowsPerLane}` : ''}${o.tex ? ',tex' : ''}]${tag(o)}`;

/** Rows (query rows for fwd/dq, key rows for dkv) owned by one workgroup of the sg variant. */
export const sgRowsPerWorkgroup = (o: SubgroupOptions): number => (o.sg / o.split) * o.rowsPerLane;

function checkSg(o: SubgroupOptions): number {
  const nv = o.hd / 4;
  if (!Number.isInteger(nv) || nv < 1) throw new Error(`attention: sg kernels need hd % 4 == 0 (got ${o.hd})`);
  if ((o.sg & (o.sg - 1)) !== 0 || o.sg < 4) throw new Error(`attention: sg must be a power of two ≥ 4 (got ${o.sg})`);
  const C = o.split;
  if (!(C >= 1 && (C & (C - 1)) === 0 && o.sg % C === 0 && nv % C === 0))
    throw new Error(`attention: split ${C} must be a power of two dividing sg ${o.sg} and hd/4 ${nv}`);
  if (!(Number.isInteger(o.rowsPerLane) && o.rowsPerLane >= 1 && (C === 1 || o.rowsPerLane === 1)))
    throw new Error(`attention: rowsPerLane ${o.rowsPerLane} must be a positive integer (and 1 when split > 1)`);
  return nv / C;
}

/** WGSL helpers: sum over the C lanes of a row (butterfly of shuffle-xors: every lane gets the same bits). */
const rowSumWgsl = (C: number): string =>
  Array.from({ length: Math.log2(C) }, (_, k) => 2 ** k)
    .map((m) => `fn rsum${m}(x: vec2<f32>) -> vec2<f32> { return x + subgroupShuffleXor(x, ${m}u); }`)
    .join('\n');
function rowSum2(C: number, x: string): string {
  let e = x;
  for (let m = 1; m < C; m *= 2) e = `rsum${m}(${e})`;
  return e;
}

/**
 * Prologue: one subgroup per workgroup; lane = (row slot ρ, channel chunk hc). RB = sg/C rows per
 * slice; the lane's rows are r_k = r0 + ρ + k·RB, k < R.
 */
const sgPrologue = (o: SubgroupOptions, nvc: number): string => /* wgsl */ `
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= P.BH) { return; }
  let rho = lid.x / ${o.split}u;             // row slot of this lane
  let hc = lid.x % ${o.split}u;              // channel chunk of this lane
  let r0 = wid.x * ${sgRowsPerWorkgroup(o)}u; // first owned row
  let b = bh / P.H;
  let h = bh - b * P.H;
  let rs = 3u * P.d4;
  let base = b * P.T * rs;
  let ch = h * ${nvc * o.split}u + hc * ${nvc}u;   // this lane's first vec4 within a row of the head
  let qcol = base + ch;
  let kcol = qcol + P.d4;
  let vcol = kcol + P.d4;
  let ycol = b * P.T * P.d4 + ch;
  let tm1 = P.T - 1u;
  ${rep(o.rowsPerLane, (k) => `let r_${k} = r0 + rho + ${k * (o.sg / o.split)}u; let rc_${k} = min(r_${k}, tm1);`, '\n  ')}`;

/** The per-lane key-padding value of the key this lane loads (1 without a mask; no load then). */
const MASK_LOAD = /* wgsl */ `var ml = 1.0;
    if (P.useMask != 0u) { ml = kmask[b * P.T + jl]; }`;

/**
 * WGSL: dropout factors z{u}_{k} of keys j0..j0+RB−1 for the lane's query rows rc_k (j0 a multiple
 * of RB). RB ≥ 4: RB/4 Philox calls per block and row; RB < 4: the call for 4 keys is cached in
 * zc_k and refreshed when j0 reaches a multiple of 4 (keys are visited in order from 0).
 */
function dropBlock(RB: number, R: number): string {
  return rep(R, (k) => dropRow(RB, k), '\n    ');
}
function dropRow(RB: number, k: number): string {
  return RB >= 4
    ? rep(RB / 4, (g) => `let zz${g}_${k} = drop_keep4(bh * P.T + rc_${k}, (j0 >> 2u) + ${g}u); ${rep(4, (t) => `let z${4 * g + t}_${k} = zz${g}_${k}[${t}];`, ' ')}`, '\n    ')
    : `if ((j0 & 3u) == 0u) { zc_${k} = drop_keep4(bh * P.T + rc_${k}, j0 >> 2u); }\n    ${rep(RB, (u) => `let z${u}_${k} = zc_${k}[(j0 + ${u}u) & 3u];`, ' ')}`;
}

/**
 * WGSL: the condition under which row group k (the lane rows r_k = r0 + ρ + k·RB of every lane) has
 * work in the key block j0..j0+RB−1 (forward, dq: some key j ≤ some row) or the query block
 * i0..i0+RB−1 (dkv: some query i ≥ some key row), and the group is not past the last row. It is
 * uniform over the subgroup (j0, i0, r0 and T are), so on lavapipe the skipped blocks cost a branch
 * instead of the whole block under a zero mask: with R rows per lane and a causal mask, a
 * workgroup's later row groups skip the key blocks past their rows (at T = 61, R = 4 about a
 * quarter of the (row, key) pairs the kernel would otherwise visit). "true" where it always holds.
 */
function groupLive(RB: number, R: number, k: number, side: 'q' | 'kv'): string {
  const c: string[] = [];
  if (R > 1) c.push(side === 'q' ? `j0 <= r0 + ${k * RB}u` : `i0 >= r0 + ${k * RB}u`);
  if (k > 0) c.push(`r0 + ${k * RB}u < P.T`);
  return c.length ? c.join(' && ') : 'true';
}

/**
 * WGSL: vec4 `c` of qkv row `row` (of this batch entry) from column base `colBase` (qcol, kcol or
 * vcol: buffer indices in vec4s): a storage load, or with `o.tex` a texel of the 3d/4 × B·T texture.
 */
const qkvAt = (o: SubgroupOptions, colBase: string, row: string, c: number): string =>
  o.tex ? `textureLoad(qkv, vec2<u32>(${colBase} - base + ${c}u, b * P.T + ${row}), 0)` : `qkv[${colBase} + ${row} * rs + ${c}u]`;

/**
 * Forward, subgroup-shared (lavapipe's variant). One workgroup = one subgroup of SG lanes owning
 * R·SG/C query rows; each row's q·scale and output accumulator live in C lanes (hd/C channels each),
 * or a lane holds R rows. Keys go in blocks of RB = SG/C: lane (ρ, c) loads chunk c of key j0 + ρ
 * (k, v and its mask value) and every lane fetches each key of the block from the lane that holds
 * it with `subgroupShuffle`; with C > 1 a row's q·k partials are summed over its lanes by
 * shuffle-xor. Each K/V element is loaded once per workgroup instead of once per query row (on
 * lavapipe a load inside a loop costs several FMAs' worth, a shuffle far less). Online softmax, one
 * rescale per block.
 */
export const forwardSg = memo((o: SubgroupOptions): KernelSpec => {
  const nvc = checkSg(o);
  const C = o.split;
  const RB = o.sg / C;
  const R = o.rowsPerLane;
  const vecs = (f: (c: number) => string, sep = ' '): string => rep(nvc, f, sep);
  const keys = (f: (u: number) => string, sep = ' '): string => rep(RB, f, sep);
  const rows = (f: (k: number) => string, sep = '\n    '): string => rep(R, f, sep);
  return kernel({
    name: sgName('fwd', o),
    bindings: fwdBindings(o.tex),
    uniforms: [...FAST_UNIFORMS, ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [o.sg, 1, 1],
    requires: ['subgroups'],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
${rowSumWgsl(C)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${sgPrologue(o, nvc)}
  ${rows((k) => vecs((c) => `let q${c}_${k} = ${qkvAt(o, 'qcol', `rc_${k}`, c)} * P.scale;`), '\n  ')}
  ${rows((k) => `${vecs((c) => `var a${c}_${k} = vec4<f32>(0.0);`)} var m_${k} = ${NEG}; var l_${k} = 0.0;`, '\n  ')}
#if ${o.dropout && RB < 4}
  ${rows((k) => `var zc_${k} = vec4<f32>(0.0);`, ' ')}
#endif
  let jend = min(r0 + ${sgRowsPerWorkgroup(o)}u, P.T);
  for (var j0 = 0u; j0 < jend; j0 = j0 + ${RB}u) {
    let jl = min(j0 + rho, tm1);             // the key whose chunk this lane loads
    ${vecs((c) => `let kl${c} = ${qkvAt(o, 'kcol', 'jl', c)};`)}
    ${vecs((c) => `let vl${c} = ${qkvAt(o, 'vcol', 'jl', c)};`)}
    ${MASK_LOAD}
    ${keys((u) => `let src${u} = ${u * C}u + hc; let mu${u} = subgroupShuffle(ml, src${u}) > 0.5;`, '\n    ')}
    ${keys((u) => vecs((c) => `let k${u}_${c} = subgroupShuffle(kl${c}, src${u});`), '\n    ')}
#if ${o.dropout && RB < 4}
    ${dropBlock(RB, R)}
#endif
    ${rows(
      (k) => /* wgsl */ `if (${groupLive(RB, R, k, 'q')}) {
      ${o.dropout && RB >= 4 ? dropRow(RB, k) : ''}
      ${keys((u) => `let ok${u} = mu${u} && j0 + ${u}u <= r_${k}; let s${u} = select(${NEG}, ${rowSum2(C, `vec2<f32>(${vecs((c) => `dot(q${c}_${k}, k${u}_${c})`, ' + ')}, 0.0)`)}.x, ok${u});`, '\n      ')}
      let mn = max(m_${k}, ${maxOf(Array.from({ length: RB }, (_, u) => `s${u}`))});
      let al = exp(m_${k} - mn);
      ${keys((u) => `let p${u} = select(0.0, exp(s${u} - mn), ok${u});`, '\n      ')}
      l_${k} = l_${k} * al + ${keys((u) => `p${u}`, ' + ')};
      ${vecs((c) => `a${c}_${k} = a${c}_${k} * al + ${keys((u) => `p${u}${o.dropout ? ` * z${u}_${k}` : ''} * subgroupShuffle(vl${c}, src${u})`, ' + ')};`, '\n      ')}
      m_${k} = mn;
    }`,
    )}
  }
  ${rows(
    (k) => /* wgsl */ `if (r_${k} < P.T) {
    let yo = ycol + r_${k} * P.d4;
    let inv = select(0.0, 1.0 / l_${k}, l_${k} > 0.0);
    ${vecs((c) => `y[yo + ${c}u] = a${c}_${k} * inv;`)}
    if (hc == 0u) { lse[bh * P.T + r_${k}] = select(${LSE_EMPTY}, m_${k} + log(l_${k}), l_${k} > 0.0); }
  }`,
    '\n  ',
  )}
}`,
  });
});

/**
 * Backward, query side, subgroup-shared: the workgroup owns its query rows as in the forward (q·scale,
 * dY chunks; lse and D per row), keys in blocks of RB loaded one chunk per lane and shuffled.
 * Writes D = rowsum(dY ⊙ Y) (for the dkv kernel) and the q slots of dqkv.
 */
export const backwardDqSg = memo((o: SubgroupOptions): KernelSpec => {
  const nvc = checkSg(o);
  const C = o.split;
  const RB = o.sg / C;
  const R = o.rowsPerLane;
  const vecs = (f: (c: number) => string, sep = ' '): string => rep(nvc, f, sep);
  const keys = (f: (u: number) => string, sep = ' '): string => rep(RB, f, sep);
  const rows = (f: (k: number) => string, sep = '\n    '): string => rep(R, f, sep);
  return kernel({
    name: sgName('bwd.dq', o),
    bindings: dqBindings(o.tex),
    uniforms: [...FAST_UNIFORMS, ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [o.sg, 1, 1],
    requires: ['subgroups'],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
${rowSumWgsl(C)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${sgPrologue(o, nvc)}
  ${rows(
    (k) =>
      `let qo_${k} = qcol + rc_${k} * rs; let yo_${k} = ycol + rc_${k} * P.d4; ` +
      `${vecs((c) => `let q${c}_${k} = ${qkvAt(o, 'qcol', `rc_${k}`, c)} * P.scale;`)} ${vecs((c) => `let g${c}_${k} = dy[yo_${k} + ${c}u];`)} ` +
      `${vecs((c) => `var dq${c}_${k} = vec4<f32>(0.0);`)} ` +
      `let D_${k} = ${rowSum2(C, `vec2<f32>(${vecs((c) => `dot(g${c}_${k}, y[yo_${k} + ${c}u])`, ' + ')}, 0.0)`)}.x; let L_${k} = lse[bh * P.T + rc_${k}];`,
    '\n  ',
  )}
#if ${o.dropout && RB < 4}
  ${rows((k) => `var zc_${k} = vec4<f32>(0.0);`, ' ')}
#endif
  let jend = min(r0 + ${sgRowsPerWorkgroup(o)}u, P.T);
  for (var j0 = 0u; j0 < jend; j0 = j0 + ${RB}u) {
    let jl = min(j0 + rho, tm1);
    ${vecs((c) => `let kl${c} = ${qkvAt(o, 'kcol', 'jl', c)};`)}
    ${vecs((c) => `let vl${c} = ${qkvAt(o, 'vcol', 'jl', c)};`)}
    ${MASK_LOAD}
    ${keys((u) => `let src${u} = ${u * C}u + hc; let mu${u} = subgroupShuffle(ml, src${u}) > 0.5;`, '\n    ')}
    ${keys((u) => vecs((c) => `let k${u}_${c} = subgroupShuffle(kl${c}, src${u}); let v${u}_${c} = subgroupShuffle(vl${c}, src${u});`), '\n    ')}
#if ${o.dropout && RB < 4}
    ${dropBlock(RB, R)}
#endif
    ${rows(
      (k) => /* wgsl */ `if (${groupLive(RB, R, k, 'q')}) {
      ${o.dropout && RB >= 4 ? dropRow(RB, k) : ''}
      ${keys(
        (u) =>
          `let sd${u} = ${rowSum2(C, `vec2<f32>(${vecs((c) => `dot(q${c}_${k}, k${u}_${c})`, ' + ')}, ${vecs((c) => `dot(g${c}_${k}, v${u}_${c})`, ' + ')})`)}; ` +
          `let p${u} = select(0.0, exp(sd${u}.x - L_${k}), mu${u} && j0 + ${u}u <= r_${k}); ` +
          `let ds${u} = p${u} * (sd${u}.y${o.dropout ? ` * z${u}_${k}` : ''} - D_${k});`,
        '\n      ',
      )}
      ${vecs((c) => `dq${c}_${k} = dq${c}_${k} + ${keys((u) => `ds${u} * k${u}_${c}`, ' + ')};`, '\n      ')}
    }`,
    )}
  }
  ${rows(
    (k) => /* wgsl */ `if (r_${k} < P.T) {
    if (hc == 0u) { dD[bh * P.T + r_${k}] = D_${k}; }
    ${vecs((c) => `dqkv[qo_${k} + ${c}u] = dq${c}_${k} * P.scale;`)}
  }`,
    '\n  ',
  )}
}`,
  });
});

/**
 * The generator parts the key-side backward kernels share (backwardDkvSg, backwardFusedSg): the lane
 * owns key rows r_k (k·scale, v, the dk and dv accumulators, the key's padding value) and visits the
 * query rows in blocks of RB, lane ρ loading query row i0 + ρ (q, dY, lse) for the others to fetch by
 * shuffle; per (query, key) pair it forms p, ds and, with dropout, the factor z from `groups` Philox
 * calls of 4 keys each.
 */
function sgKeySide(o: SubgroupOptions, groups: number) {
  const nvc = checkSg(o);
  const C = o.split;
  const RB = o.sg / C;
  const R = o.rowsPerLane;
  const vecs = (f: (c: number) => string, sep = ' '): string => rep(nvc, f, sep);
  const qrows = (f: (u: number) => string, sep = ' '): string => rep(RB, f, sep);
  const rows = (f: (k: number) => string, sep = '\n    '): string => rep(R, f, sep);
  const zOf = (u: number, k: number): string => {
    let e = `zs${u}_0`;
    for (let g = 1; g < groups; g++) e = `select(${e}, zs${u}_${g}, zg_${k} == ${g}u)`;
    return `${e}[r_${k} & 3u]`;
  };
  return {
    nvc,
    C,
    RB,
    R,
    groups,
    vecs,
    qrows,
    rows,
    /** Per owned key row k: its dqkv offsets, k·scale and v, zeroed dk and dv, keyOk_k, and zg_k = `zg(k)` (its Philox group). */
    keyRows: (zg: (k: number) => string): string =>
      rows(
        (k) =>
          `let ko_${k} = kcol + rc_${k} * rs; let vo_${k} = vcol + rc_${k} * rs; ` +
          `${vecs((c) => `let k${c}_${k} = ${qkvAt(o, 'kcol', `rc_${k}`, c)} * P.scale;`)} ${vecs((c) => `let v${c}_${k} = ${qkvAt(o, 'vcol', `rc_${k}`, c)};`)} ` +
          `${vecs((c) => `var dk${c}_${k} = vec4<f32>(0.0);`)} ${vecs((c) => `var dv${c}_${k} = vec4<f32>(0.0);`)} ` +
          `let keyOk_${k} = r_${k} < P.T && (P.useMask == 0u || kmask[b * P.T + rc_${k}] > 0.5); let zg_${k} = ${zg(k)};`,
        '\n  ',
      ),
    /** The query row il this lane loads in the block from i0: its dqkv offset qo, dY offset yo, q (ql), dY (gl) and lse (Ll). */
    loadQuery: (): string => `let il = min(i0 + rho, tm1);            // the query row whose chunk this lane loads
    let qo = qcol + il * rs;
    let yo = ycol + il * P.d4;
    ${vecs((c) => `let ql${c} = ${qkvAt(o, 'qcol', 'il', c)};`)}
    ${vecs((c) => `let gl${c} = dy[yo + ${c}u];`)}
    let Ll = lse[bh * P.T + il];`,
    /**
     * Row group k against the block's queries (shuffled in as q{u}_c, g{u}_c, L{u}, D{u}, iok{u},
     * zs{u}_g): p, ds and the dk, dv updates, then `extra` (more updates from the same ds).
     */
    pairs: (k: number, extra = ''): string => /* wgsl */ `if (${groupLive(RB, R, k, 'kv')}) {
      ${qrows(
        (u) =>
          `let sd${u} = ${rowSum2(C, `vec2<f32>(${vecs((c) => `dot(k${c}_${k}, q${u}_${c})`, ' + ')}, ${vecs((c) => `dot(v${c}_${k}, g${u}_${c})`, ' + ')})`)}; ` +
          (o.dropout ? `let z${u} = ${zOf(u, k)}; ` : '') +
          `let p${u} = select(0.0, exp(sd${u}.x - L${u}), iok${u} && keyOk_${k} && i0 + ${u}u >= r_${k}); ` +
          `let ds${u} = p${u} * (sd${u}.y${o.dropout ? ` * z${u}` : ''} - D${u}); let pz${u} = p${u}${o.dropout ? ` * z${u}` : ''};`,
        '\n      ',
      )}
      ${vecs((c) => `dv${c}_${k} = dv${c}_${k} + ${qrows((u) => `pz${u} * g${u}_${c}`, ' + ')};`, '\n      ')}
      ${vecs((c) => `dk${c}_${k} = dk${c}_${k} + ${qrows((u) => `ds${u} * q${u}_${c}`, ' + ')};`, '\n      ')}
      ${extra}
    }`,
    /** Writes the owned key rows' k and v slots of dqkv. */
    storeKeyRows: (): string =>
      rows(
        (k) => /* wgsl */ `if (r_${k} < P.T) {
    ${vecs((c) => `dqkv[ko_${k} + ${c}u] = dk${c}_${k} * P.scale;`)}
    ${vecs((c) => `dqkv[vo_${k} + ${c}u] = dv${c}_${k};`)}
  }`,
        '\n  ',
      ),
  };
}

/**
 * Backward, key side, subgroup-shared: the workgroup owns its key rows like the forward owns query
 * rows (k·scale, v and the dk, dv accumulators); query rows r0, r0 + RB, … go in blocks of RB, lane
 * (ρ, c) loading chunk c of query row i0 + ρ (and its lse, D), the others fetching it by shuffle.
 * Dropout: the lanes of query row i0 + ρ draw its factors for the workgroup's keys (one Philox call
 * per 4 keys), shuffled to the key lanes as well. Writes the k and v slots of dqkv.
 */
export const backwardDkvSg = memo((o: SubgroupOptions): KernelSpec => {
  const ks = sgKeySide(o, Math.max(1, sgRowsPerWorkgroup(o) / 4)); // Philox calls (4 keys each) covering the workgroup's keys
  const { C, RB, groups, vecs, qrows, rows } = ks;
  return kernel({
    name: sgName('bwd.dkv', o),
    bindings: dkvBindings(o.tex),
    uniforms: [...FAST_UNIFORMS, ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [o.sg, 1, 1],
    requires: ['subgroups'],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
${rowSumWgsl(C)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${sgPrologue(o, ks.nvc)}
  ${ks.keyRows((k) => `(r_${k} >> 2u) - (r0 >> 2u)`)}
  for (var i0 = r0; i0 < P.T; i0 = i0 + ${RB}u) {
    ${ks.loadQuery()}
    let Dl = dD[bh * P.T + il];
#if ${o.dropout}
    ${rep(groups, (g) => `let zl${g} = drop_keep4(bh * P.T + il, (r0 >> 2u) + ${g}u);`, ' ')}
#endif
    ${qrows(
      (u) =>
        `let src${u} = ${u * C}u + hc; ${vecs((c) => `let q${u}_${c} = subgroupShuffle(ql${c}, src${u}); let g${u}_${c} = subgroupShuffle(gl${c}, src${u});`)} ` +
        `let L${u} = subgroupShuffle(Ll, src${u}); let D${u} = subgroupShuffle(Dl, src${u}); let iok${u} = i0 + ${u}u < P.T;` +
        (o.dropout ? ` ${rep(groups, (g) => `let zs${u}_${g} = subgroupShuffle(zl${g}, src${u});`, ' ')}` : ''),
      '\n    ',
    )}
    ${rows((k) => ks.pairs(k))}
  }
  ${ks.storeKeyRows()}
}`,
  });
});

/**
 * Backward, fused dq + dk + dv for short rows (T ≤ 8R with subgroups of 8, one workgroup per (b, h)):
 * lane ρ owns the key rows ρ + 8k, k < R (k·scale, v, dk, dv as in the dkv kernel), and the query
 * rows go in blocks of 8, lane ρ loading query row i0 + ρ (q, dY, Y, lse; D_i = dY_i·Y_i computed
 * there) and the others fetching it by shuffle, as in the dkv kernel. Every (query, key) pair's
 * probability and ds are computed once instead of once in each of the dq and dkv kernels; each lane
 * adds ds·k of its keys into 8 partial dq rows (one per query of the block), which a three-stage
 * transposing butterfly (shuffle-xor 4, 2, 1; fixed order, so deterministic) sums over the lanes,
 * leaving query i0 + ρ's dq in lane ρ. Row groups without causal work in a block are skipped
 * (`groupLive`). Writes every slot of dqkv (q, k and v); no D output. The dq sums run in another
 * order than the dq kernel's, so the results equal it to rounding, not bitwise.
 */
export const backwardFusedSg = memo((o: SubgroupOptions): KernelSpec => {
  const ks = sgKeySide(o, 2 * o.rowsPerLane); // Philox calls (4 keys each) covering the workgroup's 8R keys
  if (o.split !== 1 || o.sg !== 8) throw new Error('attention: the fused backward needs split 1 and subgroups of 8');
  const { RB, groups, vecs, qrows, rows } = ks;
  // Transposing butterfly: values x{u}_{c}, u < 8 → lane ρ ends with Σ over lanes of x{ρ}_{c}.
  const butterfly = (): string => {
    const out: string[] = [];
    let names = Array.from({ length: 8 }, (_, u) => `pq${u}`);
    for (const [m, bit] of [
      [4, 'b2'],
      [2, 'b1'],
      [1, 'b0'],
    ] as const) {
      const half = names.length / 2;
      const next: string[] = [];
      for (let u = 0; u < half; u++) {
        const lo = names[u]!;
        const hi = names[u + half]!;
        const n = `t${m}_${u}`;
        out.push(vecs((c) => `let ${n}_${c} = select(${lo}_${c}, ${hi}_${c}, ${bit}) + subgroupShuffleXor(select(${hi}_${c}, ${lo}_${c}, ${bit}), ${m}u);`));
        next.push(n);
      }
      names = next;
    }
    return out.join('\n    ') + `\n    ${vecs((c) => `let dqr_${c} = ${names[0]}_${c};`)}`;
  };
  return kernel({
    name: sgName('bwd.fused', o),
    bindings: [
      o.tex ? tex('qkv') : ro('qkv', 'array<vec4<f32>>'),
      ro('kmask'),
      ro('y', 'array<vec4<f32>>'),
      ro('dy', 'array<vec4<f32>>'),
      ro('lse'),
      rw('dqkv', 'array<vec4<f32>>'),
    ],
    uniforms: [...FAST_UNIFORMS, ...(o.dropout ? DROPOUT_UNIFORMS : [])],
    workgroupSize: [o.sg, 1, 1],
    requires: ['subgroups'],
    body: wgsl`
#if ${o.dropout}
${DROPOUT_WGSL}
#endif
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${sgPrologue(o, ks.nvc)}
  let b2 = (lid.x & 4u) != 0u; let b1 = (lid.x & 2u) != 0u; let b0 = (lid.x & 1u) != 0u;
  ${ks.keyRows((k) => `r_${k} >> 2u`)}
  for (var i0 = 0u; i0 < P.T; i0 = i0 + ${RB}u) {
    ${ks.loadQuery()}
    let Dl = ${vecs((c) => `dot(gl${c}, y[yo + ${c}u])`, ' + ')};
#if ${o.dropout}
    ${rep(groups, (g) => `let zl${g} = drop_keep4(bh * P.T + il, ${g}u);`, ' ')}
#endif
    ${qrows(
      (u) =>
        `${vecs((c) => `let q${u}_${c} = subgroupShuffle(ql${c}, ${u}u); let g${u}_${c} = subgroupShuffle(gl${c}, ${u}u);`)} ` +
        `let L${u} = subgroupShuffle(Ll, ${u}u); let D${u} = subgroupShuffle(Dl, ${u}u); let iok${u} = i0 + ${u}u < P.T; ` +
        `${vecs((c) => `var pq${u}_${c} = vec4<f32>(0.0);`)}` +
        (o.dropout ? ` ${rep(groups, (g) => `let zs${u}_${g} = subgroupShuffle(zl${g}, ${u}u);`, ' ')}` : ''),
      '\n    ',
    )}
    ${rows((k) => ks.pairs(k, qrows((u) => vecs((c) => `pq${u}_${c} = pq${u}_${c} + ds${u} * k${c}_${k};`), '\n      ')))}
    ${butterfly()}
    if (i0 + rho < P.T) {
      ${vecs((c) => `dqkv[qo + ${c}u] = dqr_${c};`)}
    }
  }
  ${ks.storeKeyRows()}
}`,
  });
});

// ======================================================================================= block (register-tiled products)

/**
 * Options of the block kernels: flash-attention-2 style, each workgroup multiplies small blocks of
 * rows as matrix products with register tiles. A workgroup owns `rows` query rows (forward, dq) or
 * key rows (dkv) in groups of 4 rows × 16 lanes (4·rows invocations); a lane owns 4 rows × the
 * channels 4·(lane + 16c) of the outputs (hd/64 vec4s) and `cols`/16 columns of each score block.
 * The other side's rows stream through workgroup memory `cols` at a time. Head dims that are a
 * multiple of 64, no dropout.
 */
export interface BlockOptions {
  hd: number;
  /** Rows the workgroup owns: a multiple of 4 (4·rows invocations). */
  rows: number;
  /** Rows of the other side per block: a multiple of 16. */
  cols: number;
}

const BLOCK_LANES = 16;

/** Invocations per workgroup of a block kernel (4 rows per group of 16 lanes). */
export const blockInvocations = (o: BlockOptions): number => (o.rows / 4) * BLOCK_LANES;

/**
 * Workgroup memory of a block kernel in bytes (the adapter's maxComputeWorkgroupStorageSize bounds
 * it): own rows unpadded (read as broadcasts: every lane of a group reads the same row), streamed rows
 * padded by one vec4 (the 16 lanes of a group read 16 different rows: no bank conflicts), the score
 * blocks, and (dkv) the block's lse and D.
 */
export function blockStorageBytes(kind: 'fwd' | 'dq' | 'dkv', o: BlockOptions): number {
  const { nv, R, C } = blockParts(o);
  const own = kind === 'fwd' ? 1 : 2;
  const scores = kind === 'dkv' ? 2 : 1;
  return 16 * (own * R * nv + 2 * C * (nv + 1)) + 4 * scores * R * C + (kind === 'dkv' ? 8 * C : 0);
}

const blockName = (kind: string, o: BlockOptions): string => `attention.${kind}.block[hd${o.hd},r${o.rows},c${o.cols}]`;

/**
 * The shapes of a block kernel and its code generators. A lane's registers: 4 own rows (r) × kt =
 * cols/16 streamed rows (k, its columns tx + 16k of a score block) and 4 own rows × cv = hd/64 vec4
 * channels (c: channels 4·(tx + 16c)) of an output. Arrays: own rows `nv` vec4s apart, streamed
 * rows `pad` = nv + 1 apart, score blocks `cols` floats per own row, stored as vec4s.
 */
function blockParts(o: BlockOptions) {
  if (o.hd % 64 !== 0 || o.hd < 64) throw new Error(`attention: block kernels need hd % 64 == 0 (got ${o.hd})`);
  if (o.rows % 4 !== 0 || o.rows < 4) throw new Error(`attention: block rows must be a multiple of 4 (got ${o.rows})`);
  if (o.cols % BLOCK_LANES !== 0 || o.cols < BLOCK_LANES) throw new Error(`attention: block cols must be a multiple of 16 (got ${o.cols})`);
  const nv = o.hd / 4;
  const cv = o.hd / 64;
  const kt = o.cols / BLOCK_LANES;
  const R = o.rows;
  const C = o.cols;
  const pad = nv + 1;
  const RK = (f: (r: number, k: number) => string, sep = '\n    '): string => rep(4, (r) => rep(kt, (k) => f(r, k), sep), sep);
  const RC = (f: (r: number, c: number) => string, sep = '\n    '): string => rep(4, (r) => rep(cv, (c) => f(r, c), sep), sep);
  /** Own row r of this lane's group, and its float index in a score block. */
  const own = (r: number): string => `(4u * ty + ${r}u)`;
  const cell = (r: number, k: number): string => `${own(r)} * ${C}u + tx + ${16 * k}u`;
  return {
    nv,
    cv,
    kt,
    R,
    C,
    pad,
    RK,
    RC,
    cell,
    /** Declarations: own-row arrays (R × nv vec4s), streamed arrays (C × pad), score blocks (R × C floats as vec4s). */
    decl: (owned: string[], streamed: string[], scores: string[]): string =>
      [
        ...owned.map((a) => `var<workgroup> ${a}: array<vec4<f32>, ${R * nv}>;`),
        ...streamed.map((a) => `var<workgroup> ${a}: array<vec4<f32>, ${C * pad}>;`),
        ...scores.map((a) => `var<workgroup> ${a}: array<vec4<f32>, ${(R * C) / 4}>;`),
      ].join('\n'),
    /** Copy `n` rows from `first` on (clamped to T − 1) into arrays with row stride `stride`: [array, global expression of (row, c)]. */
    load: (n: number, stride: number, first: string, pairs: [string, (row: string) => string][]): string => /* wgsl */ `
    for (var e = li; e < ${n * nv}u; e = e + WG_X) {
      let rr = e / ${nv}u;
      let c = e - rr * ${nv}u;
      let row = min(${first} + rr, tm1);
      ${pairs.map(([dst, src]) => `${dst}[rr * ${stride}u + c] = ${src('row')};`).join('\n      ')}
    }`,
    /**
     * Score tiles: for each [accumulator, own array, streamed array], acc_r_k = Σ_c own[r]·streamed[k]
     * over the head dim (a vec4 dot per step; 4 + kt reads per array pair give 4·kt dots).
     */
    scores: (pairs: [string, string, string][]): string => /* wgsl */ `
    ${pairs.map(([acc]) => RK((r, k) => `var ${acc}${r}_${k} = 0.0;`)).join('\n    ')}
    for (var c = 0u; c < ${nv}u; c = c + 1u) {
      ${pairs.map(([acc, ownArr]) => rep(4, (r) => `let ${acc}o${r} = ${ownArr}[${own(r)} * ${nv}u + c];`, '\n      ')).join('\n      ')}
      ${pairs.map(([acc, , st]) => rep(kt, (k) => `let ${acc}t${k} = ${st}[(tx + ${16 * k}u) * ${pad}u + c];`, '\n      ')).join('\n      ')}
      ${pairs.map(([acc]) => RK((r, k) => `${acc}${r}_${k} = ${acc}${r}_${k} + dot(${acc}o${r}, ${acc}t${k});`, '\n      ')).join('\n      ')}
    }`,
    /**
     * Products with the streamed rows: for each [accumulator, score block, streamed array],
     * acc_r_c += Σ_j score[r][j]·streamed[j][channels c], four streamed rows per step (a vec4 of the
     * score block; 4 + 4·cv reads give 16·cv vec4 FMAs).
     */
    products: (pairs: [string, string, string][]): string => /* wgsl */ `
    for (var j = 0u; j < ${C / 4}u; j = j + 1u) {
      ${pairs.map(([acc, sc]) => rep(4, (r) => `let ${acc}s${r} = ${sc}[${own(r)} * ${C / 4}u + j];`, '\n      ')).join('\n      ')}
      ${pairs.map(([acc, , st]) => rep(4, (t) => rep(cv, (c) => `let ${acc}t${t}_${c} = ${st}[(4u * j + ${t}u) * ${pad}u + tx + ${16 * c}u];`, '\n      '), '\n      ')).join('\n      ')}
      ${pairs.map(([acc]) => RC((r, c) => `${acc}${r}_${c} = ${acc}${r}_${c} + ${rep(4, (t) => `${acc}s${r}[${t}] * ${acc}t${t}_${c}`, ' + ')};`, '\n      ')).join('\n      ')}
    }`,
  };
}

/**
 * A block kernel: its workgroup arrays (`decls`), then `main` with the block prologue followed by
 * `body` (which closes `main`).
 */
function blockKernel(kind: string, o: BlockOptions, bindings: BindingDecl[], decls: string, body: string): KernelSpec {
  return kernel({
    name: blockName(kind, o),
    bindings,
    uniforms: FAST_UNIFORMS,
    workgroupSize: [blockInvocations(o), 1, 1],
    body: `${decls}\n${BLOCK_MAIN}\n${blockPrologue(o.hd / 4)}\n${body}`,
  });
}

/** Prologue of the block kernels: (b, h), this lane's place, and the qkv / y column offsets. */
const blockPrologue = (nv: number): string => /* wgsl */ `
  let bh = wid.y + wid.z * nwg.y;
  if (bh >= P.BH) { return; }        // uniform over the workgroup
  let li = lid.x;
  let tx = li % ${BLOCK_LANES}u;     // lane within its group of 16: columns tx + 16·k, channels 4·(tx + 16·c)
  let ty = li / ${BLOCK_LANES}u;     // row group: rows 4·ty .. 4·ty + 3 of the workgroup's
  let b = bh / P.H;
  let h = bh - b * P.H;
  let rs = 3u * P.d4;
  let qcol = b * P.T * rs + h * ${nv}u;
  let kcol = qcol + P.d4;
  let vcol = kcol + P.d4;
  let ycol = b * P.T * P.d4 + h * ${nv}u;
  let tm1 = P.T - 1u;`;

const BLOCK_MAIN = '@compute @workgroup_size(WG_X, 1, 1)\nfn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {';

/**
 * Store scalar `v` at float index `i` of a workgroup array of vec4s (the score blocks are written a
 * float per lane and read back four at a time).
 */
const put = (buf: string, i: string, v: string): string => `${buf}[(${i}) >> 2u][(${i}) & 3u] = ${v};`;

/**
 * Sum (or max) of `x` over the 16 lanes of each row group through `buf` (vec4s; rows × 16 floats
 * used); ends with a barrier.
 */
const laneSums = (buf: string, xs: (r: number) => string, out: (r: number) => string, op: '+' | 'max' = '+'): string => {
  const f = (a: string, b: string): string => (op === '+' ? `${a} + ${b}` : `max(${a}, ${b})`);
  const red = (r: number, q: number): string => `${buf}[(4u * ty + ${r}u) * 4u + ${q}u]`;
  return /* wgsl */ `
  ${rep(4, (r) => put(buf, `(4u * ty + ${r}u) * 16u + tx`, xs(r)), '\n  ')}
  workgroupBarrier();
  ${rep(4, (r) => `let ${out(r)}4 = ${f(f(red(r, 0), red(r, 1)), f(red(r, 2), red(r, 3)))};\n  let ${out(r)} = ${f(f(`${out(r)}4.x`, `${out(r)}4.y`), f(`${out(r)}4.z`, `${out(r)}4.w`))};`, '\n  ')}
  workgroupBarrier();`;
};

/** Key padding test of key `j` (clamped into the mask). */
const keyOk = (j: string): string => `(P.useMask == 0u || kmask[b * P.T + min(${j}, tm1)] > 0.5)`;

/** Forward and dq: the key block from j0 (K and V rows) into workgroup memory, between barriers. */
const keyBlock = (g: ReturnType<typeof blockParts>): string => /* wgsl */ `workgroupBarrier();
    ${g.load(g.C, g.pad, 'j0', [
      ['kt', (row) => `qkv[kcol + ${row} * rs + c]`],
      ['vt', (row) => `qkv[vcol + ${row} * rs + c]`],
    ])}
    workgroupBarrier();`;

/** Forward and dq: this lane's keys in the block (key_k = j0 + tx + 16k) and whether each is a visible key. */
const keyColumns = (kt: number): string =>
  rep(kt, (k) => `let key${k} = j0 + tx + ${16 * k}u;\n    let kok${k} = key${k} < P.T && ${keyOk(`key${k}`)};`, '\n    ');

/**
 * Forward: a workgroup per `rows` query rows of one (b, h); key blocks of `cols` rows. Scores of
 * 4 rows × cols/16 keys per lane from q·scale (workgroup memory) and K; the block's row maxima
 * through workgroup memory (every lane of a row then rescales by the same max); P through workgroup
 * memory into o += P·V, a lane owning 4 rows × its hd/64 vec4s of channels. The row sums stay per
 * lane until the end.
 */
export const forwardBlock = memo((o: BlockOptions): KernelSpec => {
  const g = blockParts(o);
  const { nv, cv, kt, R, C, RK, RC } = g;
  return blockKernel('fwd', o, fwdBindings(), g.decl(['qs'], ['kt', 'vt'], ['pt']), /* wgsl */ `
  let r0 = wid.x * ${R}u;
  ${g.load(R, nv, 'r0', [['qs', (row) => `qkv[qcol + ${row} * rs + c] * P.scale`]])}
  ${rep(4, (r) => `let row${r} = r0 + 4u * ty + ${r}u;`, '\n  ')}
  ${RC((r, c) => `var o${r}_${c} = vec4<f32>(0.0);`, '\n  ')}
  ${rep(4, (r) => `var m${r} = ${NEG};\n  var l${r} = 0.0;`, '\n  ')}
  let jend = min(r0 + ${R}u, P.T);   // causal: keys up to the workgroup's last row
  for (var j0 = 0u; j0 < jend; j0 = j0 + ${C}u) {
    ${keyBlock(g)}
    ${g.scores([['s', 'qs', 'kt']])}
    ${keyColumns(kt)}
    ${RK((r, k) => `let ok${r}_${k} = kok${k} && key${k} <= row${r};\n    s${r}_${k} = select(${NEG}, s${r}_${k}, ok${r}_${k});`)}
    ${laneSums('pt', (r) => maxOf(rep(kt, (k) => `s${r}_${k}`, ',').split(',')), (r) => `bm${r}`, 'max')}
    ${rep(4, (r) => `let mn${r} = max(m${r}, bm${r});\n    let al${r} = exp(m${r} - mn${r});\n    m${r} = mn${r};`)}
    ${RK((r, k) => `let p${r}_${k} = select(0.0, exp(s${r}_${k} - mn${r}), ok${r}_${k});\n    ${put('pt', g.cell(r, k), `p${r}_${k}`)}`)}
    ${rep(4, (r) => `l${r} = l${r} * al${r} + ${rep(kt, (k) => `p${r}_${k}`, ' + ')};`)}
    ${RC((r, c) => `o${r}_${c} = o${r}_${c} * al${r};`)}
    workgroupBarrier();
    ${g.products([['o', 'pt', 'vt']])}
  }
  workgroupBarrier();
  ${laneSums('pt', (r) => `l${r}`, (r) => `L${r}`)}
  ${rep(
    4,
    (r) => `if (row${r} < P.T) {
    let inv = select(0.0, 1.0 / L${r}, L${r} > 0.0);
    ${rep(cv, (c) => `y[ycol + row${r} * P.d4 + tx + ${16 * c}u] = o${r}_${c} * inv;`, '\n    ')}
    if (tx == 0u) { lse[bh * P.T + row${r}] = select(${LSE_EMPTY}, m${r} + log(L${r}), L${r} > 0.0); }
  }`,
    '\n  ',
  )}
}`);
});

/**
 * Backward, query side: a workgroup per `rows` query rows, key blocks of `cols`. D = rowsum(dY ⊙ Y)
 * (written for the dkv kernel), then per block the scores S = q·kᵀ and dP = dY·vᵀ as 4 × cols/16
 * register tiles, dS = P ⊙ (dP − D) through workgroup memory into dq += dS·K.
 */
export const backwardDqBlock = memo((o: BlockOptions): KernelSpec => {
  const g = blockParts(o);
  const { nv, cv, kt, R, C, RK, RC } = g;
  return blockKernel('bwd.dq', o, dqBindings(), g.decl(['qs', 'gs'], ['kt', 'vt'], ['st']), /* wgsl */ `
  let r0 = wid.x * ${R}u;
  ${g.load(R, nv, 'r0', [
    ['qs', (row) => `qkv[qcol + ${row} * rs + c]`],
    ['gs', (row) => `dy[ycol + ${row} * P.d4 + c]`],
  ])}
  ${rep(4, (r) => `let row${r} = r0 + 4u * ty + ${r}u;\n  let rc${r} = min(row${r}, tm1);\n  let L${r} = lse[bh * P.T + rc${r}];`, '\n  ')}
  ${laneSums('st', (r) => rep(cv, (c) => `dot(dy[ycol + rc${r} * P.d4 + tx + ${16 * c}u], y[ycol + rc${r} * P.d4 + tx + ${16 * c}u])`, ' + '), (r) => `D${r}`)}
  ${rep(4, (r) => `if (tx == 0u && row${r} < P.T) { dD[bh * P.T + row${r}] = D${r}; }`, '\n  ')}
  ${RC((r, c) => `var dq${r}_${c} = vec4<f32>(0.0);`, '\n  ')}
  let jend = min(r0 + ${R}u, P.T);
  for (var j0 = 0u; j0 < jend; j0 = j0 + ${C}u) {
    ${keyBlock(g)}
    ${g.scores([
      ['s', 'qs', 'kt'],
      ['dp', 'gs', 'vt'],
    ])}
    ${keyColumns(kt)}
    ${RK((r, k) => `let p${r}_${k} = select(0.0, exp(s${r}_${k} * P.scale - L${r}), kok${k} && key${k} <= row${r});\n    ${put('st', g.cell(r, k), `p${r}_${k} * (dp${r}_${k} - D${r})`)}`)}
    workgroupBarrier();
    ${g.products([['dq', 'st', 'kt']])}
  }
  ${rep(4, (r) => `if (row${r} < P.T) {\n    ${rep(cv, (c) => `dqkv[qcol + row${r} * rs + tx + ${16 * c}u] = dq${r}_${c} * P.scale;`, '\n    ')}\n  }`, '\n  ')}
}`);
});

/**
 * Backward, key side: a workgroup per `rows` key rows, query blocks of `cols` from the workgroup's
 * first key on (causal). Per block Sᵀ = k·qᵀ and dPᵀ = v·dYᵀ as 4 × cols/16 register tiles, then P and
 * dS through workgroup memory into dv += Pᵀ·dY and dk += dSᵀ·Q. Needs D from the dq kernel.
 */
export const backwardDkvBlock = memo((o: BlockOptions): KernelSpec => {
  const g = blockParts(o);
  const { nv, cv, kt, R, C, RK, RC } = g;
  const decls = `${g.decl(['ks', 'vs'], ['qt', 'gt'], ['pt', 'st'])}\nvar<workgroup> lt: array<f32, ${C}>;\nvar<workgroup> dt: array<f32, ${C}>;`;
  return blockKernel('bwd.dkv', o, dkvBindings(), decls, /* wgsl */ `
  let k0 = wid.x * ${R}u;
  ${g.load(R, nv, 'k0', [
    ['ks', (row) => `qkv[kcol + ${row} * rs + c]`],
    ['vs', (row) => `qkv[vcol + ${row} * rs + c]`],
  ])}
  ${rep(4, (r) => `let key${r} = k0 + 4u * ty + ${r}u;\n  let kok${r} = key${r} < P.T && ${keyOk(`key${r}`)};`, '\n  ')}
  ${RC((r, c) => `var dk${r}_${c} = vec4<f32>(0.0);\n  var dv${r}_${c} = vec4<f32>(0.0);`, '\n  ')}
  for (var i0 = k0; i0 < P.T; i0 = i0 + ${C}u) {   // causal: queries from the workgroup's first key
    workgroupBarrier();
    ${g.load(C, g.pad, 'i0', [
      ['qt', (row) => `qkv[qcol + ${row} * rs + c]`],
      ['gt', (row) => `dy[ycol + ${row} * P.d4 + c]`],
    ])}
    for (var e = li; e < ${C}u; e = e + WG_X) {
      let row = min(i0 + e, tm1);
      lt[e] = lse[bh * P.T + row];
      dt[e] = dD[bh * P.T + row];
    }
    workgroupBarrier();
    ${g.scores([
      ['s', 'ks', 'qt'],
      ['dp', 'vs', 'gt'],
    ])}
    ${rep(kt, (k) => `let qi${k} = i0 + tx + ${16 * k}u;`)}
    ${RK((r, k) => `let p${r}_${k} = select(0.0, exp(s${r}_${k} * P.scale - lt[tx + ${16 * k}u]), kok${r} && qi${k} >= key${r} && qi${k} < P.T);\n    ${put('pt', g.cell(r, k), `p${r}_${k}`)}\n    ${put('st', g.cell(r, k), `p${r}_${k} * (dp${r}_${k} - dt[tx + ${16 * k}u])`)}`)}
    workgroupBarrier();
    ${g.products([
      ['dv', 'pt', 'gt'],
      ['dk', 'st', 'qt'],
    ])}
  }
  ${rep(4, (r) => `if (key${r} < P.T) {\n    ${rep(cv, (c) => `dqkv[kcol + key${r} * rs + tx + ${16 * c}u] = dk${r}_${c} * P.scale;\n    dqkv[vcol + key${r} * rs + tx + ${16 * c}u] = dv${r}_${c};`, '\n    ')}\n  }`, '\n  ')}
}`);
});
