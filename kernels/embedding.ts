/**
 * Token + position embedding: out[n, :] = wte[ids[n], :] + wpe[offset + n mod T, :], one invocation
 * per output element (or vec4 when d % 4 == 0). Ids outside [0, V) read nothing: their token row is
 * taken as zero (the output is the position row alone) and they get no gradient.
 *
 * Backward (no float atomics):
 * - `backwardWteCsr`: the CPU groups positions by token id (CSR: unique tokens ascending, offsets,
 *   positions ascending within each token, packed into one i32 buffer). One invocation per
 *   (unique token, channel) sums its positions in that fixed order and adds the sum into dwte[token].
 *   Rows of tokens that do not occur are not touched.
 * - `backwardWteScan`: the fallback when the ids are not on the CPU: one invocation per (vocab row,
 *   channel) scans every position (O(V·d·N) reads: slow, but deterministic and atomic-free).
 * - dwpe is a column sum over the batch (kernels/reduce.ts); with per-row positions, the CSR (or scan)
 *   kernel above over the positions as ids.
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export const EMB_WG = 256;

const arr = (vec4: boolean) => (vec4 ? 'array<vec4<f32>>' : 'array<f32>');
const zero = (vec4: boolean) => (vec4 ? 'vec4<f32>(0.0)' : '0.0');

/**
 * n = N·dw invocations; dw = d (or d/4); T = sequence length; V = vocab size; pos = position offset.
 * With `positions` the position of row n is `positions[n]` instead (`P.T` and `P.pos` unused; `P.P` =
 * rows of wpe): packed batches of sequences of several lengths. A position outside [0, P) reads no
 * row of wpe (the output is the token row alone; for a pad row of id −1 and position −1: zero).
 */
export const forward = memo(({ vec4, positions = false }: { vec4: boolean; positions?: boolean }): KernelSpec =>
  kernel({
    name: `embedding.fwd${positions ? '.positions' : ''}${vec4 ? '.vec4' : ''}`,
    bindings: [ro('ids', 'array<i32>'), ...(positions ? [ro('positions', 'array<i32>')] : []), ro('wte', arr(vec4)), ro('wpe', arr(vec4)), rw('out', arr(vec4))],
    uniforms: [
      ['n', 'u32'],
      ['dw', 'u32'],
      ['T', 'u32'],
      ['V', 'u32'],
      ['pos', 'u32'],
      ['P', 'u32'],
    ],
    workgroupSize: [EMB_WG, 1, 1],
    body: wgsl`
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  let row = i / P.dw;
  let c = i - row * P.dw;
  let id = ids[row];
  var w = ${zero(vec4)};
  if (id >= 0 && u32(id) < P.V) { w = wte[u32(id) * P.dw + c]; }
#if ${positions}
  let p = positions[row];
  if (p >= 0 && u32(p) < P.P) { w = w + wpe[u32(p) * P.dw + c]; }
  out[i] = w;
#else
  out[i] = w + wpe[(P.pos + row % P.T) * P.dw + c];
#endif
}`,
  }),
);

/**
 * dwte[tok[u], c] += Σ_{p ∈ [off[u], off[u+1])} dout[pos[p], c]. `csr` = [tok (U) | off (U+1) | pos].
 * n = U·dw invocations.
 */
export const backwardWteCsr = memo(({ vec4 }: { vec4: boolean }): KernelSpec =>
  kernel({
    name: `embedding.bwd_wte_csr${vec4 ? '.vec4' : ''}`,
    bindings: [ro('csr', 'array<i32>'), ro('dout', arr(vec4)), rw('dwte', arr(vec4))],
    uniforms: [
      ['n', 'u32'],
      ['dw', 'u32'],
      ['U', 'u32'],
    ],
    workgroupSize: [EMB_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  let u = i / P.dw;
  let c = i - u * P.dw;
  let tok = u32(csr[u]);
  let p0 = u32(csr[P.U + u]);
  let p1 = u32(csr[P.U + u + 1u]);
  let posBase = 2u * P.U + 1u;
  var s = ${zero(vec4)};
  for (var p = p0; p < p1; p++) {
    s = s + dout[u32(csr[posBase + p]) * P.dw + c];
  }
  let o = tok * P.dw + c;
  dwte[o] = dwte[o] + s;
}`,
  }),
);

/** dwte[v, c] (= or +=) Σ_{r: ids[r] == v} dout[r, c], scanning all N positions. n = V·dw. */
export const backwardWteScan = memo(({ vec4, accumulate }: { vec4: boolean; accumulate: boolean }): KernelSpec =>
  kernel({
    name: `embedding.bwd_wte_scan${accumulate ? '.acc' : ''}${vec4 ? '.vec4' : ''}`,
    bindings: [ro('ids', 'array<i32>'), ro('dout', arr(vec4)), rw('dwte', arr(vec4))],
    uniforms: [
      ['n', 'u32'],
      ['dw', 'u32'],
      ['N', 'u32'],
    ],
    workgroupSize: [EMB_WG, 1, 1],
    body: wgsl`
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  let v = i32(i / P.dw);
  let c = i % P.dw;
  var s = ${zero(vec4)};
  for (var r = 0u; r < P.N; r++) {
    if (ids[r] == v) { s = s + dout[r * P.dw + c]; }
  }
#if ${accumulate}
  dwte[i] = dwte[i] + s;
#else
  dwte[i] = s;
#endif
}`,
  }),
);
