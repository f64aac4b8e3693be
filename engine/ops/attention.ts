/**
 * Fused causal multi-head self-attention with autograd (kernels/attention.ts).
 *
 *   const y = causalSelfAttention(qkv, nHead, { keyPadMask, dropout: { p, seed, step } });
 *
 * qkv is [B, T, 3d] (q | k | v, each split into nHead contiguous heads of hd = d / nHead channels);
 * y is [B, T, d] with the heads merged back (head h → channels h·hd..). Attention is
 * softmax(q·kᵀ/√hd + causal mask + key padding mask), optional dropout on the probabilities.
 * The forward saves the per-row logsumexp [B, H, T]; the backward recomputes the probabilities from
 * it and returns dqkv [B, T, 3d]. Saved tensors (y, lse) live in the caller's tidy scope, like every
 * op's intermediates: keep forward and backward of a step inside one scope.
 */
import * as K from '../../kernels/attention.ts';
import type { DispatchCost, Engine, TextureBinding } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { engineOf, expectDtype, grid1d, TEX_SLOT, textureFits, toTexture, vec4able } from './common.ts';

export type AttentionVariant = 'auto' | 'ref' | 'row' | 'tiled' | 'sg' | 'block';

export interface AttentionDropout {
  /** Probability of dropping an attention probability, 0 ≤ p < 1 (p = 0 disables dropout). */
  p: number;
  seed: number;
  /** Training step: part of the Philox key, so each step draws a fresh mask. */
  step: number;
  /** Separates independent uses (e.g. one per layer). Default 0. */
  stream?: number;
}

export interface AttentionOptions {
  /** f32 [B, T]: 1 = attend to this key, 0 = padded key (never attended to). */
  keyPadMask?: Tensor;
  dropout?: AttentionDropout;
  /** Kernel variant; 'auto' takes the engine plan's choice for the head dim and pass. */
  variant?: AttentionVariant;
  /** Rows per workgroup for the row/tiled variants (a multiple of 4). */
  wg?: number;
  /** Keys per unrolled block for the row/tiled variants: 1, 2 or 4 (default 1 for row, 4 for tiled). */
  kb?: number;
  /** sg variant: lanes per row (a power of two dividing the subgroup size and hd/4); default by hd. */
  split?: number;
  /** sg variant without split: rows per lane; default by hd. */
  rowsPerLane?: number;
  /** sg variant: read qkv through a texture (default: `plan.attention.textures`, when it fits). */
  tex?: boolean;
  /**
   * sg variant, backward: dq, dk and dv in one fused kernel (a workgroup per (b, h) covering all T
   * rows, R = ⌈T/8⌉ rows per lane; needs subgroups of 8 and one lane per row). Default: the plan's
   * choice (`plan.attention.sgFusedBackwardRows`); true forces it where it can run, false turns it off.
   */
  fused?: boolean;
  /**
   * block variant: tiles (own rows × streamed rows per block) per kernel instead of the plan's
   * (`plan.attention.blockTiles`); each must fit the device's workgroup memory.
   */
  blockTiles?: Partial<Record<'fwd' | 'dq' | 'dkv', { rows: number; cols: number }>>;
}

interface Plan {
  e: Engine;
  B: number;
  T: number;
  d: number;
  H: number;
  hd: number;
  variant: 'ref' | 'row' | 'tiled' | 'sg' | 'block';
  wg: number;
  kb: number;
  split: number | undefined;
  rowsPerLane: number | undefined;
  mask: Tensor | undefined;
  dropout: AttentionDropout | undefined;
  /** block variant: the tiles of each kernel. */
  tiles: Record<'fwd' | 'dq' | 'dkv', K.BlockOptions> | undefined;
  /** Query-key pairs visited (causal triangle), for the dispatch costs. */
  pairs: number;
}

/** Default rows per workgroup, measured on lavapipe (row) / the usual GPU choice (tiled). */
const ROW_WG = 16;
const TILED_WG = 64;
export { HW_SG_BACKWARD_MIN_HD, ROW_MAX_HD } from '../plan.ts';

/** The kernel variants this engine can run (sg needs the subgroups feature with a fixed size): `plan.attention.runnable`. */
export function availableAttentionVariants(e: Engine): Exclude<AttentionVariant, 'auto'>[] {
  return [...e.plan.attention.runnable];
}

function plan(qkv: Tensor, nHead: number, opts: AttentionOptions, extra: Tensor[] = [], pass: 'fwd' | 'bwd' = 'fwd'): Plan {
  const e = engineOf(qkv, ...extra, ...(opts.keyPadMask ? [opts.keyPadMask] : []));
  expectDtype(qkv, 'f32', 'causalSelfAttention');
  if (qkv.shape.length !== 3) throw new Error(`causalSelfAttention: qkv must be [B, T, 3d], got [${qkv.shape.join(', ')}]`);
  const [B, T, d3] = qkv.shape as [number, number, number];
  if (d3 % 3 !== 0) throw new Error(`causalSelfAttention: last dim ${d3} of qkv is not 3d`);
  const d = d3 / 3;
  if (!Number.isInteger(nHead) || nHead < 1 || d % nHead !== 0) throw new Error(`causalSelfAttention: d = ${d} is not divisible by nHead = ${nHead}`);
  const hd = d / nHead;
  const mask = opts.keyPadMask;
  if (mask) {
    expectDtype(mask, 'f32', 'causalSelfAttention keyPadMask');
    if (mask.numel !== B * T) throw new Error(`causalSelfAttention: keyPadMask must be [B, T] = [${B}, ${T}], got [${mask.shape.join(', ')}]`);
  }
  let dropout = opts.dropout;
  if (dropout) {
    if (!(dropout.p >= 0 && dropout.p < 1)) throw new Error(`causalSelfAttention: dropout p = ${dropout.p} is not in [0, 1)`);
    if (dropout.p === 0) dropout = undefined;
  }
  let variant = opts.variant ?? 'auto';
  const fastOk = hd % 4 === 0 && vec4able(4, qkv, ...extra);
  const sgSize = e.plan.attention.subgroupSize;
  // 'auto': the plan's choice (engine/plan.ts, AttentionPlan.choose).
  if (variant === 'auto') variant = e.plan.attention.choose(hd, pass, { fast: fastOk, dropout: !!(dropout && dropout.p > 0) });
  if (variant !== 'ref' && !fastOk) throw new Error(`causalSelfAttention: variant "${variant}" needs hd % 4 == 0 and 16-byte aligned tensors (hd = ${hd})`);
  if (variant === 'sg' && !sgSize) throw new Error('causalSelfAttention: variant "sg" needs the subgroups feature with a fixed subgroup size');
  let tiles: Plan['tiles'];
  if (variant === 'block') {
    if (dropout) throw new Error('causalSelfAttention: variant "block" has no dropout (use sg, tiled, row or ref)');
    const storage = e.device.limits.maxComputeWorkgroupStorageSize;
    const tile = (k: 'fwd' | 'dq' | 'dkv'): K.BlockOptions => {
      const given = opts.blockTiles?.[k];
      const t = given ? { hd, ...given } : e.plan.attention.blockTiles(k, hd);
      if (!t) throw new Error(`causalSelfAttention: variant "block" needs hd % 64 == 0 and tiles within the device's workgroup memory (hd = ${hd}, ${storage} bytes)`);
      const bytes = K.blockStorageBytes(k, t); // also checks hd, rows and cols
      if (bytes > storage) throw new Error(`causalSelfAttention: block tiles ${t.rows}×${t.cols} of the ${k} kernel need ${bytes} bytes of workgroup memory, the device has ${storage}`);
      return t;
    };
    tiles = { fwd: tile('fwd'), dq: tile('dq'), dkv: tile('dkv') };
  }
  const wg = variant === 'sg' ? sgSize : (opts.wg ?? (variant === 'tiled' ? TILED_WG : ROW_WG));
  if (variant !== 'ref' && variant !== 'block' && (wg % 4 !== 0 || wg < 4 || wg > e.device.limits.maxComputeInvocationsPerWorkgroup))
    throw new Error(`causalSelfAttention: wg = ${wg} must be a multiple of 4 within the device limit`);
  const kb = opts.kb ?? (variant === 'tiled' ? 4 : 1); // row: 1 compiles much faster on lavapipe (docs/performance.md), its only auto use
  return { e, B, T, d, H: nHead, hd, variant, wg, kb, split: opts.split, rowsPerLane: opts.rowsPerLane, mask, dropout, tiles, pairs: (B * nHead * T * (T + 1)) / 2 };
}

function dropoutUniforms(p: Plan): Record<string, number> {
  const dr = p.dropout;
  if (!dr) return {};
  return { seed: dr.seed >>> 0, step: dr.step >>> 0, stream: (dr.stream ?? 0) >>> 0, p: dr.p, keepScale: 1 / (1 - dr.p) };
}

function refUniforms(p: Plan): Record<string, number> {
  return { T: p.T, H: p.H, hd: p.hd, d: p.d, rows: p.B * p.H * p.T, scale: 1 / Math.sqrt(p.hd), useMask: p.mask ? 1 : 0, ...dropoutUniforms(p) };
}

function fastUniforms(p: Plan): Record<string, number> {
  const tile: Record<string, number> = p.variant === 'tiled' ? { tile: K.tileRows(fastOpts(p)) } : {};
  return { T: p.T, H: p.H, d4: p.d / 4, BH: p.B * p.H, scale: 1 / Math.sqrt(p.hd), useMask: p.mask ? 1 : 0, ...tile, ...dropoutUniforms(p) };
}

function fastGrid(p: Plan, pass: 'fwd' | 'bwd'): [number, number, number] {
  const bh = p.B * p.H;
  const rowsPerGroup = p.variant === 'sg' ? K.sgRowsPerWorkgroup(sgOpts(p, pass)) : p.wg;
  return [Math.ceil(p.T / rowsPerGroup), Math.min(bh, 65535), Math.ceil(bh / 65535)];
}

/** Grid of a block kernel: a workgroup per `rows` rows of each (b, h). */
function blockGrid(p: Plan, rows: number): [number, number, number] {
  const bh = p.B * p.H;
  return [Math.ceil(p.T / rows), Math.min(bh, 65535), Math.ceil(bh / 65535)];
}

/** Lanes per row of the sg kernels: `split`, else the plan's (`plan.attention.sgSplit`). */
function sgSplit(p: Plan): number {
  return p.split ?? p.e.plan.attention.sgSplit(p.hd, p.wg);
}

/** Rows per lane of the sg kernels: 1 with split, else `rowsPerLane`, else the plan's (`plan.attention.sgRowsPerLane`). */
function sgRowsPerLane(p: Plan, pass: 'fwd' | 'bwd'): number {
  if (sgSplit(p) > 1) return 1;
  if (p.rowsPerLane) return p.rowsPerLane;
  return p.e.plan.attention.sgRowsPerLane(p.T, p.hd, pass);
}

function sgOpts(p: Plan, pass: 'fwd' | 'bwd'): K.SubgroupOptions {
  return { hd: p.hd, sg: p.wg, split: sgSplit(p), rowsPerLane: sgRowsPerLane(p, pass), dropout: !!p.dropout };
}

/**
 * qkv as the sg kernels read it: through a texture of 3d/4 × B·T texels where textures are on
 * (`tex`, default `plan.attention.textures`) and it fits (3d % 64 = 0, B·T ≤ the texture limit), else the buffer itself.
 */
function qkvSource(p: Plan, qkv: Tensor, opts: AttentionOptions): Tensor | TextureBinding {
  const rows = p.B * p.T;
  // Subgroups of 8 only: the path is measured and tested there (lavapipe's default 256-bit vectors);
  // with LP_NATIVE_VECTOR_WIDTH=512 (16 lanes) its results were wrong while the same kernels
  // reading the buffer were right.
  if (p.variant !== 'sg' || p.wg !== 8 || !(opts.tex ?? p.e.plan.attention.textures) || !textureFits(p.e, qkv, 3 * p.d, rows, 0, rows)) return qkv;
  return toTexture(p.e, qkv, 3 * p.d, rows, TEX_SLOT.qkv);
}

/**
 * Rows per lane of the fused sg backward when the backward runs fused (`AttentionOptions.fused`, else
 * the plan's choice; never with a forced `rowsPerLane`), else 0.
 */
function fusedRows(p: Plan, opts: AttentionOptions): number {
  if (p.variant !== 'sg' || opts.fused === false || opts.rowsPerLane) return 0;
  const split = sgSplit(p);
  if (opts.fused) {
    if (p.wg !== 8 || split !== 1) throw new Error(`causalSelfAttention: the fused backward needs subgroups of 8 and one lane per row (subgroup ${p.wg}, ${split} lanes per row at hd ${p.hd})`);
    return Math.max(1, Math.ceil(p.T / 8));
  }
  return p.e.plan.attention.sgFusedBackwardRows(p.T, p.hd, p.wg, split);
}

function fastOpts(p: Plan): K.FastOptions {
  return { hd: p.hd, wg: p.wg, kb: p.kb, tiled: p.variant === 'tiled', dropout: !!p.dropout };
}

/** Forward without autograd: y [B, T, d] and the per-row logsumexp [B, H, T]. */
export function attentionForward(
  qkv: Tensor,
  nHead: number,
  opts: AttentionOptions = {},
  out: { y?: Tensor; lse?: Tensor } = {},
): { y: Tensor; lse: Tensor } {
  const p = plan(qkv, nHead, opts, [out.y, out.lse].filter((t): t is Tensor => !!t));
  const { e, B, T, d, H } = p;
  const y = out.y ?? e.empty([B, T, d], 'f32', 'attn.y');
  const lse = out.lse ?? e.empty([B, H, T], 'f32', 'attn.lse');
  if (y.numel !== B * T * d || lse.numel !== B * H * T) throw new Error('attentionForward: preallocated outputs have the wrong size');
  const m = [p.mask ?? qkv]; // without a mask any f32 tensor fills the binding (useMask = 0)
  const cost: DispatchCost = { flops: p.pairs * (4 * p.hd + 8), bytes: 4 * (qkv.numel + y.numel + lse.numel + (p.mask ? p.mask.numel : 0)) };
  if (p.variant === 'ref') {
    const o = { dropout: !!p.dropout };
    e.dispatch(K.forwardRef(o), [qkv, ...m, y, lse], refUniforms(p), grid1d(B * H * T, K.ATTN_REF_WG), cost);
  } else if (p.variant === 'block') {
    const t = p.tiles!.fwd;
    e.dispatch(K.forwardBlock(t), [qkv, ...m, y, lse], fastUniforms(p), blockGrid(p, t.rows), cost);
  } else {
    const src = qkvSource(p, qkv, opts);
    const spec = p.variant === 'sg' ? K.forwardSg({ ...sgOpts(p, 'fwd'), tex: src !== qkv }) : K.forwardFast(fastOpts(p));
    e.dispatch(spec, [src, ...m, y, lse], fastUniforms(p), fastGrid(p, 'fwd'), cost);
  }
  return { y, lse };
}

/**
 * Backward without autograd: dqkv [B, T, 3d] from the forward's inputs and outputs and dy [B, T, d].
 * The same options (mask, dropout seed/step/stream, variant) as the forward must be given.
 * `out` may give preallocated dqkv and D (the [B, H, T] scratch for rowsum(dY ⊙ Y)).
 */
export function attentionBackward(
  qkv: Tensor,
  y: Tensor,
  lse: Tensor,
  dy: Tensor,
  nHead: number,
  opts: AttentionOptions = {},
  out: { dqkv?: Tensor; D?: Tensor } = {},
): Tensor {
  const p = plan(qkv, nHead, opts, [y, dy, ...[out.dqkv].filter((t): t is Tensor => !!t)], 'bwd');
  const { e, B, T, H } = p;
  if (dy.numel !== y.numel || y.numel !== B * T * p.d) throw new Error(`attention backward: dy has ${dy.numel} elements, y has ${y.numel}, expected ${B * T * p.d}`);
  const dqkv = out.dqkv ?? e.empty(qkv.shape, 'f32', 'attn.dqkv');
  const m = [p.mask ?? qkv]; // without a mask any f32 tensor fills the binding (useMask = 0)
  const R = fusedRows(p, opts);
  if (R > 0) {
    // One workgroup per (b, h) covers all T ≤ 8R rows: dq, dk and dv in one dispatch, no D scratch.
    if (dqkv.numel !== qkv.numel) throw new Error('attentionBackward: preallocated dqkv has the wrong size');
    const src = qkvSource(p, qkv, opts);
    const spec = K.backwardFusedSg({ hd: p.hd, sg: 8, split: 1, rowsPerLane: R, dropout: !!p.dropout, tex: src !== qkv });
    const bh = B * H;
    const cost: DispatchCost = { flops: p.pairs * (14 * p.hd + 12) + 2 * y.numel, bytes: 8 * qkv.numel + 8 * y.numel + 4 * B * H * T };
    e.dispatch(spec, [src, ...m, y, dy, lse, dqkv], fastUniforms(p), [1, Math.min(bh, 65535), Math.ceil(bh / 65535)], cost);
    return dqkv;
  }
  const D = out.D ?? e.empty([B, H, T], 'f32', 'attn.D');
  if (dqkv.numel !== qkv.numel || D.numel !== B * H * T) throw new Error('attentionBackward: preallocated outputs have the wrong size');
  const rowBytes = 4 * (B * H * T);
  const dqCost: DispatchCost = { flops: p.pairs * (6 * p.hd + 8) + 2 * y.numel, bytes: 4 * qkv.numel + 8 * y.numel + 2 * rowBytes + (4 * qkv.numel) / 3 };
  const dkvCost: DispatchCost = { flops: p.pairs * (8 * p.hd + 8), bytes: 4 * qkv.numel + 4 * y.numel + 2 * rowBytes + (8 * qkv.numel) / 3 };
  if (p.variant === 'ref') {
    const o = { dropout: !!p.dropout };
    const u = refUniforms(p);
    const g = grid1d(B * H * T, K.ATTN_REF_WG);
    e.dispatch(K.backwardRefD({}), [y, dy, D], u, g, { flops: 2 * y.numel, bytes: 8 * y.numel + rowBytes });
    e.dispatch(K.backwardRefDq(o), [qkv, ...m, dy, lse, D, dqkv], u, g, dqCost);
    e.dispatch(K.backwardRefDkv(o), [qkv, ...m, dy, lse, D, dqkv], u, g, dkvCost);
  } else if (p.variant === 'block') {
    const u = fastUniforms(p);
    const { dq, dkv } = p.tiles!;
    e.dispatch(K.backwardDqBlock(dq), [qkv, ...m, y, dy, lse, D, dqkv], u, blockGrid(p, dq.rows), dqCost);
    e.dispatch(K.backwardDkvBlock(dkv), [qkv, ...m, dy, lse, D, dqkv], u, blockGrid(p, dkv.rows), dkvCost);
  } else {
    const sg = p.variant === 'sg';
    const u = fastUniforms(p);
    const g = fastGrid(p, 'bwd');
    const src = qkvSource(p, qkv, opts);
    const so = { ...sgOpts(p, 'bwd'), tex: src !== qkv };
    const dq = sg ? K.backwardDqSg(so) : K.backwardDqFast(fastOpts(p));
    const dkv = sg ? K.backwardDkvSg(so) : K.backwardDkvFast(fastOpts(p));
    e.dispatch(dq, [src, ...m, y, dy, lse, D, dqkv], u, g, dqCost);
    e.dispatch(dkv, [src, ...m, dy, lse, D, dqkv], u, g, dkvCost);
  }
  if (!out.D) e.dispose(D);
  return dqkv;
}

/**
 * Causal multi-head self-attention from the fused projection qkv [B, T, 3d] to y [B, T, d], with
 * autograd (the backward returns the dqkv contribution).
 */
export function causalSelfAttention(qkv: Tensor, nHead: number, opts: AttentionOptions = {}): Tensor {
  const e = qkv.engine;
  const { y, lse } = attentionForward(qkv, nHead, opts);
  if (e.recording([qkv])) {
    e.record({
      name: 'causalSelfAttention',
      inputs: [qkv],
      outputs: [y],
      backward: ([g]) => [g ? attentionBackward(qkv, y, lse, g, nHead, opts) : null],
    });
  } else e.dispose(lse);
  return y;
}

/** One segment of a packed [N, 3d] qkv: `batch` sequences of `seqLen` rows from row `rowStart` on. */
export interface AttentionSegment {
  rowStart: number;
  batch: number;
  seqLen: number;
  /** f32 [batch, seqLen]: the segment's key padding mask (1 = attend, 0 = padded key). */
  keyPadMask?: Tensor;
}

/**
 * Rows by which a segment start must be a multiple so that slices of a packed qkv [N, 3d], y [N, d]
 * and their gradients start on the device's storage offset alignment (`Engine.sliceAlignment`).
 */
export function segmentRowAlignment(e: Engine, d: number): number {
  const a = e.sliceAlignment;
  let g = a;
  for (let b = 4 * d; b !== 0; ) [g, b] = [b, g % b]; // gcd(alignment, bytes of a y row)
  return a / g;
}

/**
 * Causal self-attention over a packed qkv [N, 3d] holding several batches of different lengths
 * (`segments`, e.g. the buckets of a sparse batch): each segment attends within its own sequences,
 * exactly as `causalSelfAttention` on that segment alone. Rows outside every segment (alignment
 * padding) give zero rows of y [N, d] and get a zero gradient. Each segment's start row must be a
 * multiple of `segmentRowAlignment`. One autograd node; the kernels run once per segment on slices.
 * Dropout draws its mask per segment (element indices within the segment).
 */
export function segmentedSelfAttention(qkv: Tensor, nHead: number, segments: readonly AttentionSegment[], opts: Omit<AttentionOptions, 'keyPadMask'> = {}): Tensor {
  const e = qkv.engine;
  expectDtype(qkv, 'f32', 'segmentedSelfAttention');
  if (qkv.shape.length !== 2 || qkv.shape[1]! % 3 !== 0) throw new Error(`segmentedSelfAttention: qkv must be [N, 3d], got [${qkv.shape.join(', ')}]`);
  const [N, d3] = qkv.shape as [number, number];
  const d = d3 / 3;
  const align = segmentRowAlignment(e, d);
  let end = 0;
  for (const s of segments) {
    if (s.rowStart % align !== 0) throw new Error(`segmentedSelfAttention: segment start row ${s.rowStart} is not a multiple of ${align} (storage offset alignment)`);
    if (s.rowStart < end) throw new Error(`segmentedSelfAttention: segment at row ${s.rowStart} overlaps the previous one (ends at row ${end})`);
    end = s.rowStart + s.batch * s.seqLen;
    if (end > N) throw new Error(`segmentedSelfAttention: segment rows ${s.rowStart}..${end} exceed qkv's ${N} rows`);
  }
  const y = e.zeros([N, d], 'f32', 'attn.y');
  const parts = segments.map((s) => {
    const o: AttentionOptions = { ...opts, keyPadMask: s.keyPadMask };
    const q = e.slice(qkv, s.rowStart * d3, [s.batch, s.seqLen, d3]);
    const ys = e.slice(y, s.rowStart * d, [s.batch, s.seqLen, d]);
    const { lse } = attentionForward(q, nHead, o, { y: ys });
    return { s, o, q, ys, lse };
  });
  if (e.recording([qkv])) {
    e.record({
      name: 'segmentedSelfAttention',
      inputs: [qkv],
      outputs: [y],
      backward: ([g]) => {
        if (!g) return [null];
        const dqkv = e.zeros([N, d3], 'f32', 'attn.dqkv');
        for (const { s, o, q, ys, lse } of parts) {
          const sl = (t: Tensor, w: number) => e.slice(t, s.rowStart * w, [s.batch, s.seqLen, w]);
          attentionBackward(q, ys, lse, sl(g, d), nHead, o, { dqkv: sl(dqkv, d3) });
        }
        return [dqkv];
      },
    });
  } else for (const p of parts) e.dispose(p.lse);
  return y;
}
