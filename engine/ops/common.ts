/** Helpers shared by the op modules: dispatch grids, shape checks, vec4 eligibility. */
import type { Bindable, Engine } from '../engine.ts';
import { storageOf } from '../engine.ts';
import type { Tensor } from '../tensor.ts';

/** Workgroup grid covering `n` invocations of a 1D kernel with workgroup size `wg`, x ≤ 65535. */
export function grid1d(n: number, wg: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

/** True when every binding can be read as vec4<f32>: n % 4 == 0 and 16-byte aligned offsets. */
export function vec4able(n: number, ...bs: Bindable[]): boolean {
  return n % 4 === 0 && bs.every((b) => storageOf(b).offset % 16 === 0);
}

export function sameShape(a: Tensor, b: Tensor, op: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    throw new Error(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
}

export function expectDtype(t: Tensor, dtype: string, op: string): void {
  if (t.dtype !== dtype) throw new Error(`${op}: tensor "${t.name}" has dtype ${t.dtype}, expected ${dtype}`);
}

export function engineOf(...ts: Tensor[]): Engine {
  const e = ts[0]!.engine;
  for (const t of ts) if (t.engine !== e) throw new Error('tensors belong to different engines');
  return e;
}

/**
 * The gradient of `t` when backward can add into it directly: `t` wants a gradient and already has
 * a live f32 one (a parameter with its slot in the gradient arena, or a leaf that received a
 * gradient earlier in this backward). Ops then write with accumulate and return null to autograd.
 */
export function gradTarget(t: Tensor): Tensor | null {
  const g = t.grad;
  return t.requiresGrad && g !== null && g.isAlive && g.numel === t.numel && g.dtype === 'f32' ? g : null;
}
