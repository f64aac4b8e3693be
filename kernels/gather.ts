/**
 * Row gather and its adjoint, the row scatter.
 *
 * - `rows`: out[i, :] = x[rows[i], :] for i < M (a row index outside [0, N) gives a zero row).
 * - `scatter`: dx[rows[i], :] = g[i, :] (or += with `accumulate`) for i < M; rows outside [0, N)
 *   are skipped; rows of dx that no index names are not touched (the op clears dx first).
 *
 * The indices of one scatter must be distinct: every output element is then written by at most one
 * invocation, so the result is deterministic without atomics. One invocation per (index, channel),
 * or per (index, 4 channels) when d % 4 == 0.
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export const GATHER_WG = 256;

const arr = (vec4: boolean) => (vec4 ? 'array<vec4<f32>>' : 'array<f32>');

/**
 * One shader for both directions: invocation i = (m, c) of n = M·dw finds row r = idx[m] and either
 * reads x's row r into out's row m (gather) or writes g's row m into dx's row r (scatter).
 */
function rowKernel(scatter: boolean, vec4: boolean, accumulate: boolean): KernelSpec {
  return kernel({
    name: scatter ? `gather.scatter${accumulate ? '.acc' : ''}${vec4 ? '.vec4' : ''}` : `gather.rows${vec4 ? '.vec4' : ''}`,
    bindings: scatter ? [ro('idx', 'array<i32>'), ro('g', arr(vec4)), rw('dx', arr(vec4))] : [ro('idx', 'array<i32>'), ro('x', arr(vec4)), rw('out', arr(vec4))],
    uniforms: [
      ['n', 'u32'],
      ['dw', 'u32'],
      ['N', 'u32'],
    ],
    workgroupSize: [GATHER_WG, 1, 1],
    body: wgsl`
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  let m = i / P.dw;
  let c = i - m * P.dw;
  let r = idx[m];
#if ${scatter}
  if (r < 0 || u32(r) >= P.N) { return; }
  let o = u32(r) * P.dw + c;
  dx[o] = ${accumulate ? 'dx[o] + ' : ''}g[i];
#else
  var v = ${vec4 ? 'vec4<f32>(0.0)' : '0.0'};
  if (r >= 0 && u32(r) < P.N) { v = x[u32(r) * P.dw + c]; }
  out[i] = v;
#endif
}`,
  });
}

/** n = M·dw invocations; dw = d (or d/4); N = rows of x. */
export const rows = memo(({ vec4 }: { vec4: boolean }): KernelSpec => rowKernel(false, vec4, false));

/** n = M·dw invocations; dx[idx[m]·dw + c] (+)= g[m·dw + c]. Indices must be distinct. */
export const scatter = memo(({ vec4, accumulate }: { vec4: boolean; accumulate: boolean }): KernelSpec => rowKernel(true, vec4, accumulate));
