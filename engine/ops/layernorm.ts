/**
 * LayerNorm over the last dimension, and the fused residual + LayerNorm of a pre-LN transformer block
 * (h = x + r; y = LN(h)), with autograd. Forward saves (mean, rstd) per row; backward gives dx and,
 * through a deterministic two-stage column reduction, dγ and dβ.
 *
 * `groups: G` stacks G independent LayerNorms along the rows (the models of a stacked run, each with
 * its own parameters): x [G·R, d] (any leading shape with G·R rows), gamma and beta [G, d] (G·d
 * elements); rows g·R … (g+1)·R − 1 use row g of the parameters and give its gradient.
 */
import * as K from '../../kernels/layernorm.ts';
import type { Engine } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { add } from './elementwise.ts';
import { engineOf, expectDtype, gradTarget, grid1d, sameShape, vec4able } from './common.ts';

export type { LayerNormVariant } from '../../kernels/layernorm.ts';

export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Force a kernel variant (default: `plan.layernorm.choose(d, rows)`: 'thread' on the software plan; on the hardware one 'wg', 'thread' for narrow rows and many). */
  variant?: K.LayerNormVariant;
  /** Stacked independent LayerNorms (default 1): gamma/beta hold `groups`·d elements, the rows split evenly. */
  groups?: number;
}

export function defaultLayerNormVariant(e: Engine, d: number, rows: number): K.LayerNormVariant {
  return e.plan.layernorm.choose(d, rows);
}

function resolve(e: Engine, x: Tensor, o: number | LayerNormOptions | undefined): { eps: number; variant: K.LayerNormVariant; groups: number } {
  const opts = typeof o === 'number' ? { eps: o } : (o ?? {});
  const d = x.dim(-1);
  return { eps: opts.eps ?? 1e-5, variant: opts.variant ?? defaultLayerNormVariant(e, d, d > 0 ? x.numel / d : 0), groups: opts.groups ?? 1 };
}

/** Rows, width and the grouped uniform (`groupRows`, present when groups > 1). */
interface LnShape {
  rows: number;
  d: number;
  groups: number;
  extra: { groupRows?: number };
}

function checkParams(x: Tensor, gamma: Tensor, beta: Tensor, groups: number, op: string): LnShape {
  expectDtype(x, 'f32', op);
  const d = x.dim(-1);
  const rows = x.numel / d;
  if (!(Number.isInteger(groups) && groups >= 1)) throw new Error(`${op}: groups must be a positive integer, got ${groups}`);
  if (gamma.numel !== groups * d || beta.numel !== groups * d)
    throw new Error(`${op}: gamma/beta have ${gamma.numel}/${beta.numel} elements, expected ${groups * d} (${groups} group(s) of ${d})`);
  if (rows % groups !== 0) throw new Error(`${op}: ${rows} rows do not split into ${groups} groups`);
  return { rows, d, groups, extra: groups > 1 ? { groupRows: rows / groups } : {} };
}

function rowGrid(variant: K.LayerNormVariant, rows: number): [number, number, number] {
  return variant === 'thread' ? grid1d(rows, K.LN_THREAD_WG) : grid1d(rows, 1);
}

export { LN_PARAMS_ONE_PASS_ROWS } from '../plan.ts';

/** dγ, dβ = column sums of g·x̂ and g (two stages when the rows are many); null where added into a gradient directly or not wanted. */
function paramGrads(e: Engine, xin: Tensor, stats: Tensor, gy: Tensor, s: LnShape, gamma: Tensor, beta: Tensor): [Tensor | null, Tensor | null] {
  const { rows, d } = s;
  // Where a parameter already has its gradient (the gradient arena), add into it directly: one or
  // two dispatches per LayerNorm in all, nothing for autograd to add afterwards.
  const tg = gradTarget(gamma);
  const tb = gradTarget(beta);
  const dgamma = tg ?? e.empty(gamma.shape, 'f32', 'dgamma');
  const dbeta = tb ?? e.empty(beta.shape, 'f32', 'dbeta');
  const acc = (tg ? K.LN_ACC_GAMMA : 0) | (tb ? K.LN_ACC_BETA : 0);
  if (s.groups > 1) groupedParamGrads(e, xin, stats, gy, s, dgamma, dbeta, acc);
  else singleParamGrads(e, xin, stats, gy, rows, d, dgamma, dbeta, acc);
  const out = (t: Tensor, target: Tensor | null, wanted: boolean): Tensor | null => {
    if (target) return null;
    if (wanted) return t;
    e.dispose(t);
    return null;
  };
  return [out(dgamma, tg, gamma.requiresGrad), out(dbeta, tb, beta.requiresGrad)];
}

/** One LayerNorm's dγ, dβ: one pass up to LN_PARAMS_ONE_PASS_ROWS rows on the software plan, else planChunks (engine/plan.ts). */
function singleParamGrads(e: Engine, xin: Tensor, stats: Tensor, gy: Tensor, rows: number, d: number, dgamma: Tensor, dbeta: Tensor, acc: number): void {
  const { nChunks, chunkLen } = e.plan.layernorm.paramChunks(d, rows);
  const cost = { flops: 5 * rows * d, bytes: 4 * (2 * rows * d + 2 * rows + 2 * nChunks * d) };
  const grid = grid1d(nChunks * d, K.LN_PARAMS_WG);
  if (nChunks === 1) {
    e.dispatch(K.backwardParams({}), [xin, stats, gy, dgamma, dbeta], { rows, d, nChunks, chunkLen, acc }, grid, cost);
  } else {
    const pg = e.empty([nChunks * d], 'f32', 'dgamma.partial');
    const pb = e.empty([nChunks * d], 'f32', 'dbeta.partial');
    e.dispatch(K.backwardParams({}), [xin, stats, gy, pg, pb], { rows, d, nChunks, chunkLen, acc: 0 }, grid, cost);
    e.dispatch(K.backwardParamsFinal({}), [pg, pb, dgamma, dbeta], { d, nChunks, acc, G: 1 }, grid1d(d, K.LN_PARAMS_WG), {
      flops: 2 * nChunks * d,
      bytes: 4 * (2 * nChunks * d + 2 * d * (acc ? 2 : 1)),
    });
    e.dispose(pg);
    e.dispose(pb);
  }
}

/**
 * The grouped parameter gradients: per (group, chunk, column) partials over chunks that never cross a
 * group, then (with more than one chunk per group) their sums in chunk order per group, dγ and dβ
 * in one dispatch.
 */
function groupedParamGrads(e: Engine, xin: Tensor, stats: Tensor, gy: Tensor, s: LnShape, dgamma: Tensor, dbeta: Tensor, acc: number): void {
  const { rows, d, groups: G } = s;
  const R = rows / G;
  const { nChunks: per, chunkLen } = e.plan.layernorm.paramChunks(G * d, R);
  const cost = { flops: 5 * rows * d, bytes: 4 * (2 * rows * d + 2 * rows + 2 * G * per * d) };
  const grid = grid1d(G * per * d, K.LN_PARAMS_WG);
  const uniforms = { rows, d, nChunks: G * per, chunkLen, groupRows: R, groupChunks: per };
  if (per === 1) {
    e.dispatch(K.backwardParams({ grouped: true }), [xin, stats, gy, dgamma, dbeta], { ...uniforms, acc }, grid, cost);
    return;
  }
  const pg = e.empty([G * per * d], 'f32', 'dgamma.partial');
  const pb = e.empty([G * per * d], 'f32', 'dbeta.partial');
  e.dispatch(K.backwardParams({ grouped: true }), [xin, stats, gy, pg, pb], { ...uniforms, acc: 0 }, grid, cost);
  e.dispatch(K.backwardParamsFinal({}), [pg, pb, dgamma, dbeta], { d, nChunks: per, acc, G }, grid1d(G * d, K.LN_PARAMS_WG), {
    flops: 2 * G * per * d,
    bytes: 4 * (2 * G * per * d + 2 * G * d * (acc ? 2 : 1)),
  });
  e.dispose(pg);
  e.dispose(pb);
}

function backwardDx(e: Engine, variant: K.LayerNormVariant, xin: Tensor, gamma: Tensor, stats: Tensor, gy: Tensor, gh: Tensor | null, s: LnShape): Tensor {
  const { rows, d } = s;
  const dx = e.empty(xin.shape, 'f32', 'dx');
  const bind = gh ? [xin, gamma, stats, gy, gh, dx] : [xin, gamma, stats, gy, dx];
  const vec4 = d % 4 === 0 && vec4able(d, xin, gamma, gy, dx, ...(gh ? [gh] : []));
  const spec = K.backwardDx({ variant, addGrad: gh !== null, vec4, ...(s.groups > 1 ? { grouped: true } : {}) });
  e.dispatch(spec, bind, { rows, d, ...s.extra }, rowGrid(variant, rows), {
    flops: 11 * rows * d,
    bytes: 4 * ((gh ? 4 : 3) * rows * d + d + 2 * rows),
  });
  return dx;
}

/**
 * y = (x − mean) / sqrt(var + eps) · γ + β over the last dimension of x [..., d] (biased variance).
 * The 4th argument is eps or an options object.
 */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, opts?: number | LayerNormOptions): Tensor {
  const e = engineOf(x, gamma, beta);
  const { eps, variant, groups } = resolve(e, x, opts);
  const s = checkParams(x, gamma, beta, groups, 'layerNorm');
  const { rows, d } = s;
  const y = e.empty(x.shape, 'f32', 'ln.y');
  const stats = e.empty([rows, 2], 'f32', 'ln.stats');
  const spec = K.forward({ variant, add: false, vec4: d % 4 === 0 && vec4able(d, x, gamma, beta, y), ...(groups > 1 ? { grouped: true } : {}) });
  e.dispatch(spec, [x, gamma, beta, y, stats], { rows, d, eps, ...s.extra }, rowGrid(variant, rows), {
    flops: 8 * rows * d,
    bytes: 4 * (2 * rows * d + 2 * d + 2 * rows),
  });
  if (e.recording([x, gamma, beta]))
    e.record({
      name: 'layerNorm',
      inputs: [x, gamma, beta],
      outputs: [y],
      backward: ([gy]) => {
        if (!gy) return [null, null, null];
        const dx = x.requiresGrad ? backwardDx(e, variant, x, gamma, stats, gy, null, s) : null;
        const [dg, db] = gamma.requiresGrad || beta.requiresGrad ? paramGrads(e, x, stats, gy, s, gamma, beta) : [null, null];
        return [dx, dg, db];
      },
    });
  return y;
}

/**
 * Fused residual + LayerNorm: h = x + r and y = LN(h) in one kernel (one read of x and r, one write
 * of h and y). Backward: dh = LN'(gy) + gh in one kernel, given to both x and r.
 */
export function addLayerNorm(x: Tensor, r: Tensor, gamma: Tensor, beta: Tensor, opts?: number | LayerNormOptions): { h: Tensor; y: Tensor } {
  const e = engineOf(x, r, gamma, beta);
  const { eps, variant, groups } = resolve(e, x, opts);
  sameShape(x, r, 'addLayerNorm');
  const s = checkParams(x, gamma, beta, groups, 'addLayerNorm');
  const { rows, d } = s;
  const h = e.empty(x.shape, 'f32', 'ln.h');
  const y = e.empty(x.shape, 'f32', 'ln.y');
  const stats = e.empty([rows, 2], 'f32', 'ln.stats');
  const spec = K.forward({ variant, add: true, vec4: d % 4 === 0 && vec4able(d, x, r, gamma, beta, h, y), ...(groups > 1 ? { grouped: true } : {}) });
  e.dispatch(spec, [x, r, gamma, beta, h, y, stats], { rows, d, eps, ...s.extra }, rowGrid(variant, rows), {
    flops: 9 * rows * d,
    bytes: 4 * (4 * rows * d + 2 * d + 2 * rows),
  });
  if (e.recording([x, r, gamma, beta]))
    e.record({
      name: 'addLayerNorm',
      inputs: [x, r, gamma, beta],
      outputs: [h, y],
      backward: ([gh, gy]) => {
        let dh: Tensor | null = gh ?? null;
        let dg: Tensor | null = null;
        let db: Tensor | null = null;
        if (gy) {
          if (x.requiresGrad || r.requiresGrad) dh = backwardDx(e, variant, h, gamma, stats, gy, gh ?? null, s);
          if (gamma.requiresGrad || beta.requiresGrad) [dg, db] = paramGrads(e, h, stats, gy, s, gamma, beta);
        }
        return [x.requiresGrad ? dh : null, r.requiresGrad ? dh : null, dg, db];
      },
    });
  return { h, y };
}

/** The unfused pair (reference for addLayerNorm): h = add(x, r), y = layerNorm(h). */
export function addLayerNormUnfused(x: Tensor, r: Tensor, gamma: Tensor, beta: Tensor, opts?: number | LayerNormOptions): { h: Tensor; y: Tensor } {
  const h = add(x, r);
  return { h, y: layerNorm(h, gamma, beta, opts) };
}
