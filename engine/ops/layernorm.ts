/**
 * LayerNorm over the last dimension, and the fused residual + LayerNorm of a pre-LN transformer block
 * (h = x + r; y = LN(h)), with autograd. Forward saves (mean, rstd) per row; backward gives dx and,
 * through a deterministic two-stage column reduction, dγ and dβ.
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
  /** Force a kernel variant (default: `plan.layernorm.variant`, 'thread' on the software plan, 'wg' on the hardware one). */
  variant?: K.LayerNormVariant;
}

export function defaultLayerNormVariant(e: Engine): K.LayerNormVariant {
  return e.plan.layernorm.variant;
}

function resolve(e: Engine, o: number | LayerNormOptions | undefined): { eps: number; variant: K.LayerNormVariant } {
  const opts = typeof o === 'number' ? { eps: o } : (o ?? {});
  return { eps: opts.eps ?? 1e-5, variant: opts.variant ?? defaultLayerNormVariant(e) };
}

function checkParams(x: Tensor, gamma: Tensor, beta: Tensor, op: string): { rows: number; d: number } {
  expectDtype(x, 'f32', op);
  const d = x.dim(-1);
  if (gamma.numel !== d || beta.numel !== d) throw new Error(`${op}: gamma/beta have ${gamma.numel}/${beta.numel} elements, expected ${d}`);
  return { rows: x.numel / d, d };
}

function rowGrid(variant: K.LayerNormVariant, rows: number): [number, number, number] {
  return variant === 'thread' ? grid1d(rows, K.LN_THREAD_WG) : grid1d(rows, 1);
}

export { LN_PARAMS_ONE_PASS_ROWS } from '../plan.ts';

/** dγ, dβ = column sums of g·x̂ and g (two stages when the rows are many); null where added into a gradient directly or not wanted. */
function paramGrads(e: Engine, xin: Tensor, stats: Tensor, gy: Tensor, rows: number, d: number, gamma: Tensor, beta: Tensor): [Tensor | null, Tensor | null] {
  // Where a parameter already has its gradient (the gradient arena), add into it directly: one or
  // two dispatches per LayerNorm in all, nothing for autograd to add afterwards.
  const tg = gradTarget(gamma);
  const tb = gradTarget(beta);
  const dgamma = tg ?? e.empty([d], 'f32', 'dgamma');
  const dbeta = tb ?? e.empty([d], 'f32', 'dbeta');
  const acc = (tg ? K.LN_ACC_GAMMA : 0) | (tb ? K.LN_ACC_BETA : 0);
  // One pass up to LN_PARAMS_ONE_PASS_ROWS rows on the software plan, else planChunks (engine/plan.ts).
  const { nChunks, chunkLen } = e.plan.layernorm.paramChunks(d, rows);
  const cost = { flops: 5 * rows * d, bytes: 4 * (2 * rows * d + 2 * rows + 2 * nChunks * d) };
  const grid = grid1d(nChunks * d, K.LN_PARAMS_WG);
  if (nChunks === 1) {
    e.dispatch(K.backwardParams({}), [xin, stats, gy, dgamma, dbeta], { rows, d, nChunks, chunkLen, acc }, grid, cost);
  } else {
    const pg = e.empty([nChunks * d], 'f32', 'dgamma.partial');
    const pb = e.empty([nChunks * d], 'f32', 'dbeta.partial');
    e.dispatch(K.backwardParams({}), [xin, stats, gy, pg, pb], { rows, d, nChunks, chunkLen, acc: 0 }, grid, cost);
    e.dispatch(K.backwardParamsFinal({}), [pg, pb, dgamma, dbeta], { d, nChunks, acc }, grid1d(d, K.LN_PARAMS_WG), {
      flops: 2 * nChunks * d,
      bytes: 4 * (2 * nChunks * d + 2 * d * (acc ? 2 : 1)),
    });
    e.dispose(pg);
    e.dispose(pb);
  }
  const out = (t: Tensor, target: Tensor | null, wanted: boolean): Tensor | null => {
    if (target) return null;
    if (wanted) return t;
    e.dispose(t);
    return null;
  };
  return [out(dgamma, tg, gamma.requiresGrad), out(dbeta, tb, beta.requiresGrad)];
}

function backwardDx(e: Engine, variant: K.LayerNormVariant, xin: Tensor, gamma: Tensor, stats: Tensor, gy: Tensor, gh: Tensor | null, rows: number, d: number): Tensor {
  const dx = e.empty(xin.shape, 'f32', 'dx');
  const bind = gh ? [xin, gamma, stats, gy, gh, dx] : [xin, gamma, stats, gy, dx];
  const vec4 = d % 4 === 0 && vec4able(d, xin, gamma, gy, dx, ...(gh ? [gh] : []));
  e.dispatch(K.backwardDx({ variant, addGrad: gh !== null, vec4 }), bind, { rows, d }, rowGrid(variant, rows), {
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
  const { eps, variant } = resolve(e, opts);
  const { rows, d } = checkParams(x, gamma, beta, 'layerNorm');
  const y = e.empty(x.shape, 'f32', 'ln.y');
  const stats = e.empty([rows, 2], 'f32', 'ln.stats');
  e.dispatch(K.forward({ variant, add: false, vec4: d % 4 === 0 && vec4able(d, x, gamma, beta, y) }), [x, gamma, beta, y, stats], { rows, d, eps }, rowGrid(variant, rows), {
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
        const dx = x.requiresGrad ? backwardDx(e, variant, x, gamma, stats, gy, null, rows, d) : null;
        const [dg, db] = gamma.requiresGrad || beta.requiresGrad ? paramGrads(e, x, stats, gy, rows, d, gamma, beta) : [null, null];
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
  const { eps, variant } = resolve(e, opts);
  sameShape(x, r, 'addLayerNorm');
  const { rows, d } = checkParams(x, gamma, beta, 'addLayerNorm');
  const h = e.empty(x.shape, 'f32', 'ln.h');
  const y = e.empty(x.shape, 'f32', 'ln.y');
  const stats = e.empty([rows, 2], 'f32', 'ln.stats');
  e.dispatch(K.forward({ variant, add: true, vec4: d % 4 === 0 && vec4able(d, x, r, gamma, beta, h, y) }), [x, r, gamma, beta, h, y, stats], { rows, d, eps }, rowGrid(variant, rows), {
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
          if (x.requiresGrad || r.requiresGrad) dh = backwardDx(e, variant, h, gamma, stats, gy, gh ?? null, rows, d);
          if (gamma.requiresGrad || beta.requiresGrad) [dg, db] = paramGrads(e, h, stats, gy, rows, d, gamma, beta);
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
