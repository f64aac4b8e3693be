/** Elementwise ops with autograd: add, sub, scale, axpby, mul; plus fill and in-place accumulate. */
import * as K from '../../kernels/elementwise.ts';
import type { Engine } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { engineOf, grid1d, sameShape, vec4able } from './common.ts';

/** A new tensor of `shape` filled with `value`. */
export function full(engine: Engine, shape: readonly number[], value: number, name?: string): Tensor {
  const out = engine.empty(shape, 'f32', name);
  fillInto(out, value);
  return out;
}

export function fillInto(out: Tensor, value: number): void {
  const e = out.engine;
  const v4 = vec4able(out.numel, out);
  const n = v4 ? out.numel / 4 : out.numel;
  e.dispatch(K.fill({ vec4: v4 }), [out], { n, value }, grid1d(n, K.ELEMENTWISE_WG), { bytes: out.numel * 4 });
}

/** alpha·a + beta·b (same shapes). */
export function axpby(a: Tensor, b: Tensor, alpha: number, beta: number): Tensor {
  const e = engineOf(a, b);
  sameShape(a, b, 'axpby');
  const out = e.empty(a.shape);
  const v4 = vec4able(a.numel, a, b, out);
  const n = v4 ? a.numel / 4 : a.numel;
  e.dispatch(K.axpby({ vec4: v4, inplace: false }), [a, b, out], { n, alpha, beta }, grid1d(n, K.ELEMENTWISE_WG), {
    flops: 3 * a.numel,
    bytes: 12 * a.numel,
  });
  if (e.recording([a, b]))
    e.record({
      name: 'axpby',
      inputs: [a, b],
      outputs: [out],
      backward: ([g]) => [g && a.requiresGrad ? scale(g!, alpha) : null, g && b.requiresGrad ? scale(g!, beta) : null],
    });
  return out;
}

export const add = (a: Tensor, b: Tensor): Tensor => axpby(a, b, 1, 1);
export const sub = (a: Tensor, b: Tensor): Tensor => axpby(a, b, 1, -1);

/** s·a */
export function scale(a: Tensor, s: number): Tensor {
  const e = a.engine;
  const out = e.empty(a.shape);
  const v4 = vec4able(a.numel, a, out);
  const n = v4 ? a.numel / 4 : a.numel;
  e.dispatch(K.axpby({ vec4: v4, inplace: true }), [a, out], { n, alpha: s, beta: 0 }, grid1d(n, K.ELEMENTWISE_WG), { flops: a.numel, bytes: 8 * a.numel });
  if (e.recording([a])) e.record({ name: 'scale', inputs: [a], outputs: [out], backward: ([g]) => [g ? scale(g, s) : null] });
  return out;
}

/** dst = alpha·src + beta·dst, in place (no autograd: used for gradient accumulation). */
export function accumulate(dst: Tensor, src: Tensor, alpha = 1, beta = 1): void {
  const e = engineOf(dst, src);
  if (dst.numel !== src.numel) throw new Error(`accumulate: ${src.numel} elements into ${dst.numel}`);
  const v4 = vec4able(dst.numel, dst, src);
  const n = v4 ? dst.numel / 4 : dst.numel;
  e.dispatch(K.axpby({ vec4: v4, inplace: true }), [src, dst], { n, alpha, beta }, grid1d(n, K.ELEMENTWISE_WG), { flops: 3 * dst.numel, bytes: 12 * dst.numel });
}

/** a ⊙ b */
export function mul(a: Tensor, b: Tensor): Tensor {
  const e = engineOf(a, b);
  sameShape(a, b, 'mul');
  const out = e.empty(a.shape);
  const v4 = vec4able(a.numel, a, b, out);
  const n = v4 ? a.numel / 4 : a.numel;
  e.dispatch(K.mul({ vec4: v4 }), [a, b, out], { n }, grid1d(n, K.ELEMENTWISE_WG), { flops: a.numel, bytes: 12 * a.numel });
  if (e.recording([a, b]))
    e.record({
      name: 'mul',
      inputs: [a, b],
      outputs: [out],
      backward: ([g]) => [g && a.requiresGrad ? mul(g, b) : null, g && b.requiresGrad ? mul(g, a) : null],
    });
  return out;
}
