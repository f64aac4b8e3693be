/**
 * Dropout with autograd. The mask is a pure function of (seed, step, stream, element index) through
 * Philox4x32-10 (see kernels/dropout.ts), so the backward regenerates it instead of storing it, and a
 * resumed run draws the same masks. p = 0 returns the input itself (no dispatch, no tape node).
 */
import * as K from '../../kernels/dropout.ts';
import type { Tensor } from '../tensor.ts';
import { expectDtype, grid1d, vec4able } from './common.ts';

export interface DropoutOptions {
  /** Key word 0 (u32). */
  seed: number;
  /** Key word 1 (u32), e.g. the optimizer step. Default 0. */
  step?: number;
  /** Counter word 1 (u32): separates independent uses within a step. Default 0. */
  stream?: number;
}

function apply(x: Tensor, p: number, o: DropoutOptions): Tensor {
  const e = x.engine;
  const out = e.empty(x.shape, 'f32', 'dropout');
  const n = x.numel;
  const groups = Math.ceil(n / 4);
  const v4 = vec4able(n, x, out);
  const scale = p >= 1 ? 0 : 1 / (1 - p);
  e.dispatch(
    K.dropout({ vec4: v4 }),
    [x, out],
    { n, groups, seed: o.seed >>> 0, step: (o.step ?? 0) >>> 0, stream: (o.stream ?? 0) >>> 0, p, scale },
    grid1d(groups, K.DROPOUT_WG),
    { flops: 2 * n + 40 * groups, bytes: 8 * n },
  );
  return out;
}

/** Zero each element with probability p (keep when u ≥ p) and scale the kept ones by 1/(1 − p). */
export function dropout(x: Tensor, p: number, opts: DropoutOptions): Tensor {
  expectDtype(x, 'f32', 'dropout');
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p = ${p} is outside [0, 1]`);
  if (p === 0) return x;
  const e = x.engine;
  const y = apply(x, p, opts);
  if (e.recording([x])) e.record({ name: 'dropout', inputs: [x], outputs: [y], backward: ([g]) => [g ? apply(g, p, opts) : null] });
  return y;
}
