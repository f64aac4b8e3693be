/**
 * Reductions with autograd: sum and mean over any axis of a contiguous tensor, the global sum of
 * squares (gradient clipping), and the deterministic column sum (`reduceAxisInto`) that the bias,
 * LayerNorm and embedding backward passes share. No atomics: every sum has a fixed order.
 */
import * as K from '../../kernels/reduce.ts';
import type { Bindable, Engine } from '../engine.ts';
import { storageOf } from '../engine.ts';
import type { Storage } from '../memory.ts';
import { Tensor } from '../tensor.ts';
import { expectDtype, grid1d, vec4able } from './common.ts';

export type ReduceVariant = 'axis' | 'rows';

/**
 * How to split a reduction of length n over `outputs` independent sums: chunks of chunkLen (the last
 * may be shorter): `plan.reduce.chunks` (engine/plan.ts). Depends only on the shape and the plan's
 * kind, so results are reproducible. On the hardware plan there are at most ⌈√n⌉ chunks.
 */
export function planChunks(e: Engine, outputs: number, n: number, minChunk = 32): { nChunks: number; chunkLen: number } {
  return e.plan.reduce.chunks(outputs, n, minChunk);
}

export interface ReduceIntoOptions {
  /** Element offset of the result inside `out`. */
  outOffset?: number;
  /** Add into `out` instead of overwriting it. */
  accumulate?: boolean;
  /** Multiply the sums by this (mean = 1/n). */
  scale?: number;
  /** Force a kernel variant: 'axis' (one invocation per output) or 'rows' (a workgroup per row; inner = 1 only). */
  variant?: ReduceVariant;
  /** Force the number of chunks along the reduced axis (tests). */
  nChunks?: number;
}

function dispatchStage(
  e: Engine,
  x: Bindable,
  out: Bindable,
  outer: number,
  n: number,
  inner: number,
  nChunks: number,
  chunkLen: number,
  scale: number,
  outOffset: number,
  accumulate: boolean,
  rows: boolean,
): void {
  const outputs = outer * nChunks * inner;
  const cost = { flops: outer * n * inner, bytes: 4 * (outer * n * inner + outputs * (accumulate ? 2 : 1)) };
  if (rows) {
    e.dispatch(K.sumRows({ accumulate }), [x, out], { outer, n, nChunks, chunkLen, scale, outOffset }, grid1d(outer * nChunks, 1), cost);
  } else {
    // vec4 over the inner dimension when it and the output offset allow 16-byte aligned vec4 access
    const v4 = inner % 4 === 0 && outOffset % 4 === 0 && vec4able(4, x, out);
    const w = v4 ? 4 : 1;
    e.dispatch(
      K.sumAxis({ accumulate, vec4: v4 }),
      [x, out],
      { outer, n, inner: inner / w, nChunks, chunkLen, scale, outOffset: outOffset / w },
      grid1d(outputs / w, K.REDUCE_WG),
      cost,
    );
  }
}

/**
 * out[outOffset + o·inner + i] (= or +=) scale · Σ_k x[(o·n + k)·inner + i], x viewed as [outer, n, inner].
 * Two stages (per-chunk partial sums, then their sum in chunk order) when there are few outputs and
 * a long axis; one otherwise. Deterministic for a given shape.
 */
export function reduceAxisInto(e: Engine, x: Bindable, out: Bindable, outer: number, n: number, inner: number, opts: ReduceIntoOptions = {}): void {
  const outOffset = opts.outOffset ?? 0;
  const accumulate = opts.accumulate ?? false;
  const scale = opts.scale ?? 1;
  const rows = (opts.variant ?? e.plan.reduce.choose(inner, n)) === 'rows';
  if (rows && inner !== 1) throw new Error('reduce: the rows variant needs inner = 1');
  if (outer * inner === 0) return;
  if (n === 0) {
    if (!accumulate) {
      // Sum over an empty axis: zeros (axis kernel with an empty loop).
      dispatchStage(e, x, out, outer, 0, inner, 1, 1, scale, outOffset, false, false);
    }
    return;
  }
  // invocations per chunk: a workgroup per row, or one per output (per four outputs in the vec4 form)
  let plan = planChunks(e, rows ? outer * 256 : (outer * inner) / (inner % 4 === 0 ? 4 : 1), n, rows ? 1024 : 32);
  if (opts.nChunks) {
    const chunkLen = Math.ceil(n / opts.nChunks);
    plan = { chunkLen, nChunks: Math.ceil(n / chunkLen) };
  }
  if (plan.nChunks === 1) {
    dispatchStage(e, x, out, outer, n, inner, 1, n, scale, outOffset, accumulate, rows);
    return;
  }
  const partial = e.empty([outer * plan.nChunks * inner], 'f32', 'reduce.partial');
  dispatchStage(e, x, partial, outer, n, inner, plan.nChunks, plan.chunkLen, 1, 0, false, rows);
  dispatchStage(e, partial, out, outer, plan.nChunks, inner, 1, plan.nChunks, scale, outOffset, accumulate, false);
  // Later work in this command stream may reuse the buffer; WebGPU orders the dispatches.
  e.dispose(partial);
}

/** Column sums of a [rows, cols] matrix: out[outOffset + c] (= or +=) scale · Σ_r x[r, c]. */
export function colSumInto(e: Engine, x: Bindable, out: Bindable, rows: number, cols: number, opts: ReduceIntoOptions = {}): void {
  reduceAxisInto(e, x, out, 1, rows, cols, opts);
}

/** Column sums of x viewed as [rows, cols] (cols = last dimension) as a new tensor [cols]. */
export function colSum(x: Tensor, cols = x.dim(-1)): Tensor {
  const e = x.engine;
  const out = e.empty([cols]);
  colSumInto(e, x, out, x.numel / cols, cols);
  return out;
}

function normAxis(x: Tensor, axis: number): number {
  const a = axis < 0 ? axis + x.shape.length : axis;
  if (!Number.isInteger(a) || a < 0 || a >= x.shape.length) throw new Error(`sum: axis ${axis} out of range for shape [${x.shape.join(', ')}]`);
  return a;
}

export interface SumOptions {
  keepDim?: boolean;
  variant?: ReduceVariant;
}

function reduceOp(name: string, x: Tensor, axis: number, mean: boolean, opts: SumOptions): Tensor {
  const e = x.engine;
  expectDtype(x, 'f32', name);
  const a = normAxis(x, axis);
  const outer = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
  const n = x.shape[a]!;
  const inner = x.shape.slice(a + 1).reduce((p, d) => p * d, 1);
  let shape = opts.keepDim ? x.shape.map((d, i) => (i === a ? 1 : d)) : x.shape.filter((_, i) => i !== a);
  if (shape.length === 0) shape = [1];
  if (mean && n === 0) throw new Error('mean over an empty axis');
  const scale = mean ? 1 / n : 1;
  const out = e.empty(shape);
  reduceAxisInto(e, x, out, outer, n, inner, { scale, variant: opts.variant });
  if (e.recording([x]))
    e.record({
      name,
      inputs: [x],
      outputs: [out],
      backward: ([g]) => [g ? broadcastAxis(g, x.shape, outer, n, inner, scale) : null],
    });
  return out;
}

/** out = scale · g broadcast along the reduced axis (the backward of sum and mean). */
function broadcastAxis(g: Tensor, shape: readonly number[], outer: number, n: number, inner: number, scale: number): Tensor {
  const e = g.engine;
  const out = e.empty(shape);
  const total = outer * n * inner;
  e.dispatch(K.broadcastAxis({}), [g, out], { total, n, inner, scale }, grid1d(total, K.REDUCE_WG), { flops: total, bytes: 4 * (total + outer * inner) });
  return out;
}

/** Σ over `axis` (negative counts from the end); the axis is removed unless keepDim. */
export function sum(x: Tensor, axis: number, opts: SumOptions = {}): Tensor {
  return reduceOp('sum', x, axis, false, opts);
}

/** Mean over `axis`. */
export function mean(x: Tensor, axis: number, opts: SumOptions = {}): Tensor {
  return reduceOp('mean', x, axis, true, opts);
}

/**
 * Σ x² over every element of every tensor or storage region in `list` (a region's element count is
 * byteLength / 4), as a tensor [1]. Regions may be whole arena chunks (tens of millions of elements;
 * alignment padding is zero): one dispatch per region, a fixed number of invocations (at most
 * `plan.reduce.sumsqThreads`: 4096 on the software plan, 65536 on the hardware one; at least 256 elements or vec4s each) each summing a grid-strided
 * slice (vec4 when aligned) into its own partial, then one workgroup summing all partials in order.
 * The engine argument is needed when the list holds no Tensor.
 * Differentiable in its Tensor inputs (d/dx = 2x·g); storage regions get no gradient.
 */
export function sumOfSquares(list: (Tensor | Storage)[], engine?: Engine): Tensor {
  const first = list.find((b): b is Tensor => b instanceof Tensor);
  const e = engine ?? first?.engine;
  if (!e) throw new Error('sumOfSquares: pass the engine when the list holds no Tensor');
  const items = list.map((b) => {
    const n = b instanceof Tensor ? b.numel : Math.floor(storageOf(b).byteLength / 4);
    const vec4 = vec4able(n, b);
    const units = vec4 ? n / 4 : n;
    // At least 256 units per invocation; at most sumsqThreads() invocations per region.
    const threads = Math.min(e.plan.reduce.sumsqThreads, Math.ceil(units / 256));
    return { b, n, vec4, units, threads };
  });
  const total = items.reduce((a, it) => a + it.threads, 0);
  const out = e.empty([1], 'f32', 'sumOfSquares');
  const partial = e.empty([Math.max(1, total)], 'f32', 'sumsq.partial');
  let off = 0;
  for (const it of items) {
    if (it.threads === 0) continue;
    e.dispatch(K.sumSquaresPartial({ vec4: it.vec4 }), [it.b, partial], { n: it.units, threads: it.threads, outOffset: off }, grid1d(it.threads, K.SUMSQ_WG), {
      flops: 2 * it.n,
      bytes: 4 * (it.n + it.threads),
    });
    off += it.threads;
  }
  e.dispatch(K.sumAll({}), [partial, out], { n: total, scale: 1 }, [1, 1, 1], { flops: total, bytes: 4 * (total + 1) });
  e.dispose(partial);
  const tensors = list.filter((b): b is Tensor => b instanceof Tensor);
  if (e.recording(tensors))
    e.record({
      name: 'sumOfSquares',
      inputs: tensors,
      outputs: [out],
      backward: ([g]) =>
        tensors.map((t) => {
          if (!g || !t.requiresGrad) return null;
          const d = e.empty(t.shape);
          e.dispatch(K.scaleByScalar({}), [t, g, d], { n: t.numel, alpha: 2 }, grid1d(t.numel, K.REDUCE_WG), { flops: 2 * t.numel, bytes: 8 * t.numel });
          return d;
        }),
    });
  return out;
}
