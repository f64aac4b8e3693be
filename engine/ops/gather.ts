/**
 * Row gather with autograd: gatherRows(x [..., d], idx i32 [M]) → [M, d], out[i] = x_rows[idx[i]]
 * where x_rows is x viewed as [N, d]. An index outside [0, N) gives a zero row (and no gradient).
 *
 * Backward scatters the output gradient back: dx is zero except dx[idx[i]] = g[i]. The indices must
 * be distinct (each row of dx is then written by one invocation: deterministic, no atomics); with
 * `idxHost` the op checks it. When x is a leaf with a live gradient (gradTarget), the rows are added
 * into it in place.
 */
import * as K from '../../kernels/gather.ts';
import type { Tensor } from '../tensor.ts';
import { engineOf, expectDtype, gradTarget, grid1d, vec4able } from './common.ts';

export interface GatherOptions {
  /** The same indices on the CPU: checked to be distinct (the backward's requirement). */
  idxHost?: Int32Array;
}

/** Throws unless the indices are distinct. */
export function checkDistinct(idx: Int32Array, op = 'gatherRows'): void {
  const seen = new Set<number>();
  for (const r of idx) {
    if (seen.has(r)) throw new Error(`${op}: row index ${r} occurs twice (the backward needs distinct rows)`);
    seen.add(r);
  }
}

export function gatherRows(x: Tensor, idx: Tensor, opts: GatherOptions = {}): Tensor {
  const e = engineOf(x, idx);
  expectDtype(x, 'f32', 'gatherRows');
  expectDtype(idx, 'i32', 'gatherRows');
  if (x.shape.length < 2) throw new Error(`gatherRows: x must have at least 2 dims, got [${x.shape.join(', ')}]`);
  const d = x.dim(-1);
  const N = x.numel / d;
  const M = idx.numel;
  if (opts.idxHost) {
    if (opts.idxHost.length !== M) throw new Error(`gatherRows: idxHost has ${opts.idxHost.length} indices, the idx tensor ${M}`);
    checkDistinct(opts.idxHost);
  }
  const out = e.empty([M, d], 'f32', 'gather.out');
  const v4 = d % 4 === 0 && vec4able(d, x, out);
  const dw = v4 ? d / 4 : d;
  const n = M * dw;
  e.dispatch(K.rows({ vec4: v4 }), [idx, x, out], { n, dw, N }, grid1d(n, K.GATHER_WG), { bytes: 4 * (M + 2 * M * d) });
  if (e.recording([x]))
    e.record({
      name: 'gatherRows',
      inputs: [x],
      outputs: [out],
      backward: ([g]) => {
        if (!g) return [null];
        const into = gradTarget(x);
        const dx = into ?? e.zeros(x.shape, 'f32', 'gather.dx');
        const sv4 = d % 4 === 0 && vec4able(d, g, dx);
        const sdw = sv4 ? d / 4 : d;
        e.dispatch(K.scatter({ vec4: sv4, accumulate: into !== null }), [idx, g, dx], { n: M * sdw, dw: sdw, N }, grid1d(M * sdw, K.GATHER_WG), {
          bytes: 4 * (M + (into ? 3 : 2) * M * d),
        });
        return [into ? null : dx];
      },
    });
  return out;
}
