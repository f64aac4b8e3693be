/**
 * Masked softmax cross-entropy (the training loss), argmax and masked accuracy.
 *
 * crossEntropy(logits [..., V], targets i32 [...], mask f32 [...]) → [1]:
 *   Σ mask_i·CE_i / Σ mask_i, and 0 (not NaN) when Σ mask = 0.
 * Forward is two dispatches: one row kernel (online softmax, per-row masked loss and, when recording,
 * the row's log-sum-exp saved for backward), then one workgroup summing the rows in a fixed order.
 * Backward is one pass over the logits: (softmax − onehot)·mask_i·g / Σ mask.
 * Targets outside [0, V) are treated as mask 0.
 */
import * as K from '../../kernels/cross_entropy.ts';
import type { Engine } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { engineOf, expectDtype, grid1d } from './common.ts';

export type { RowVariant } from '../../kernels/cross_entropy.ts';

export interface RowOptions {
  /** Force 'thread' (one invocation per row) or 'wg' (one workgroup per row). */
  variant?: K.RowVariant;
}

export function defaultRowVariant(e: Engine, V: number, N: number): K.RowVariant {
  // The plan's choice (engine/plan.ts): 'thread' on the software plan; on the hardware plan only for short, many rows.
  return e.plan.rows.choose(V, N);
}

function checkRows(logits: Tensor, targets: Tensor | null, mask: Tensor | null, op: string): { N: number; V: number } {
  expectDtype(logits, 'f32', op);
  const V = logits.dim(-1);
  const N = logits.numel / V;
  if (targets) {
    expectDtype(targets, 'i32', op);
    if (targets.numel !== N) throw new Error(`${op}: ${targets.numel} targets for ${N} rows`);
  }
  if (mask) {
    expectDtype(mask, 'f32', op);
    if (mask.numel !== N) throw new Error(`${op}: ${mask.numel} mask values for ${N} rows`);
  }
  return { N, V };
}

function rowGrid(variant: K.RowVariant, N: number): [number, number, number] {
  return variant === 'thread' ? grid1d(N, K.CE_THREAD_WG) : grid1d(N, 1);
}

/** Masked mean softmax cross-entropy over the rows of logits; a tensor [1]. */
export function crossEntropy(logits: Tensor, targets: Tensor, mask: Tensor, opts: RowOptions = {}): Tensor {
  const { loss, rows } = crossEntropyAndRows(logits, targets, mask, opts);
  logits.engine.dispose(rows);
  return loss;
}

/**
 * `crossEntropy` that also hands back the per-row pairs its mean was summed from ([N, 2], as
 * `crossEntropyRows` gives them; not differentiable), for a caller that wants both without a
 * second pass over the logits. The caller disposes `rows`.
 */
export function crossEntropyAndRows(logits: Tensor, targets: Tensor, mask: Tensor, opts: RowOptions = {}): { loss: Tensor; rows: Tensor } {
  const e = engineOf(logits, targets, mask);
  const { N, V } = checkRows(logits, targets, mask, 'crossEntropy');
  const variant = opts.variant ?? defaultRowVariant(e, V, N);
  const recording = e.recording([logits]);
  const pairs = e.empty([N, 2], 'f32', 'ce.rows');
  const lse = recording ? e.empty([N], 'f32', 'ce.lse') : null;
  e.dispatch(K.rows({ variant, lse: recording }), lse ? [logits, targets, mask, pairs, lse] : [logits, targets, mask, pairs], { N, V }, rowGrid(variant, N), {
    flops: 5 * N * V,
    bytes: 4 * (N * V + 5 * N),
  });
  const loss = e.empty([1], 'f32', 'ce.loss');
  const inv = e.empty([1], 'f32', 'ce.inv');
  e.dispatch(K.finalSum({ mode: 'ratio' }), [pairs, loss, inv], { N }, [1, 1, 1], { flops: 2 * N, bytes: 8 * N + 8 });
  if (recording) {
    e.record({
      name: 'crossEntropy',
      inputs: [logits, targets, mask],
      outputs: [loss],
      backward: ([g]) => {
        if (!g) return [null, null, null];
        const grad = e.empty(logits.shape, 'f32', 'ce.grad');
        e.dispatch(K.gradRows({ variant }), [logits, targets, mask, lse!, g, inv, grad], { N, V }, rowGrid(variant, N), {
          flops: 4 * N * V,
          bytes: 4 * (2 * N * V + 4 * N),
        });
        return [grad, null, null];
      },
    });
  } else e.dispose(inv);
  return { loss, rows: pairs };
}

/**
 * Per-row losses without the mean: [N, 2] with row i = (mask_i·CE_i, mask_i) (targets outside [0, V)
 * give (0, 0)). Not differentiable (evaluation and scoring).
 */
export function crossEntropyRows(logits: Tensor, targets: Tensor, mask: Tensor, opts: RowOptions = {}): Tensor {
  const e = engineOf(logits, targets, mask);
  const { N, V } = checkRows(logits, targets, mask, 'crossEntropyRows');
  const variant = opts.variant ?? defaultRowVariant(e, V, N);
  const pairs = e.empty([N, 2], 'f32', 'ce.rows');
  e.dispatch(K.rows({ variant, lse: false }), [logits, targets, mask, pairs], { N, V }, rowGrid(variant, N), { flops: 5 * N * V, bytes: 4 * (N * V + 4 * N) });
  return pairs;
}

/** Index of the largest logit per row (ties → lowest index): i32, the logits' shape without V. */
export function argmax(logits: Tensor, opts: RowOptions = {}): Tensor {
  const e = logits.engine;
  const { N, V } = checkRows(logits, null, null, 'argmax');
  const variant = opts.variant ?? defaultRowVariant(e, V, N);
  const shape = logits.shape.length > 1 ? logits.shape.slice(0, -1) : [1];
  const idx = e.empty(shape, 'i32', 'argmax');
  e.dispatch(K.argmax({ variant, accuracy: false }), [logits, idx], { N, V }, rowGrid(variant, N), { flops: N * V, bytes: 4 * (N * V + N) });
  return idx;
}

/**
 * Per-row accuracy pairs without the sum: [N, 2] with row i = (mask_i·[argmax_i = target_i], mask_i)
 * (targets outside [0, V) give (0, 0)). Not differentiable.
 */
export function maskedAccuracyRows(logits: Tensor, targets: Tensor, mask: Tensor, opts: RowOptions = {}): Tensor {
  const e = engineOf(logits, targets, mask);
  const { N, V } = checkRows(logits, targets, mask, 'maskedAccuracy');
  const variant = opts.variant ?? defaultRowVariant(e, V, N);
  const pairs = e.empty([N, 2], 'f32', 'accuracy.rows');
  e.dispatch(K.argmax({ variant, accuracy: true }), [logits, targets, mask, pairs], { N, V }, rowGrid(variant, N), { flops: N * V, bytes: 4 * (N * V + 4 * N) });
  return pairs;
}

/** [correct, total]: Σ mask_i·[argmax_i = target_i] and Σ mask_i (targets outside [0, V) count as mask 0). */
export function maskedAccuracy(logits: Tensor, targets: Tensor, mask: Tensor, opts: RowOptions = {}): Tensor {
  const e = engineOf(logits, targets, mask);
  const pairs = maskedAccuracyRows(logits, targets, mask, opts);
  const N = pairs.dim(0);
  const out = e.empty([2], 'f32', 'accuracy');
  e.dispatch(K.finalSum({ mode: 'raw' }), [pairs, out], { N }, [1, 1, 1], { flops: 2 * N, bytes: 8 * N + 8 });
  e.dispose(pairs);
  return out;
}
