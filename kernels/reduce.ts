/**
 * Deterministic reductions (no atomics: every sum is taken in a fixed order that depends only on the
 * shape, so the same inputs give bitwise the same result).
 *
 * - `sumAxis`: sum over the middle axis of x viewed as [outer, n, inner], split into `nChunks` chunks
 *   of `chunkLen` along n. One invocation per (outer, chunk, inner) output; it walks its chunk in
 *   order. Called once with nChunks = 1 (direct) or twice (per-chunk partial sums, then the sum of the
 *   partials): the two-stage column reduction used by bias, LayerNorm-parameter and embedding
 *   gradients. Adjacent invocations read adjacent `inner` elements (coalesced).
 * - `sumRows`: the same sum for inner = 1 (rows), one workgroup per (outer, chunk) with a strided
 *   load and a shared-memory tree: the hardware variant for long contiguous rows.
 * - `broadcastAxis`: the backward of both (out = scale · g broadcast over the reduced axis).
 * - `sumSquaresPartial` / `sumAll`: the global sum of squares (gradient-norm clipping): a fixed number
 *   of invocations per region, each summing a grid-strided slice into its own partial, then one
 *   workgroup sums all partials in a fixed order.
 * - `scaleByScalar`: out = alpha · x · s[0] with s read from a buffer (backward of sumOfSquares).
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { sharedArray, treeReduce } from './snippets.ts';
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export const REDUCE_WG = 256;
export const SUMSQ_WG = 64;

/**
 * out[outOffset + (o·nChunks + ch)·inner + i] (= or +=) scale · Σ_{k ∈ chunk ch} x[(o·n + k)·inner + i].
 * With `vec4`, inner and outOffset count vec4s (inner % 4 == 0 and 16-byte aligned bindings).
 */
export const sumAxis = memo(({ accumulate, vec4 }: { accumulate: boolean; vec4?: boolean }): KernelSpec =>
  kernel({
    name: `reduce.sum_axis${accumulate ? '.acc' : ''}${vec4 ? '.vec4' : ''}`,
    bindings: [ro('x', vec4 ? 'array<vec4<f32>>' : 'array<f32>'), rw('out', vec4 ? 'array<vec4<f32>>' : 'array<f32>')],
    uniforms: [
      ['outer', 'u32'],
      ['n', 'u32'],
      ['inner', 'u32'],
      ['nChunks', 'u32'],
      ['chunkLen', 'u32'],
      ['scale', 'f32'],
      ['outOffset', 'u32'],
    ],
    workgroupSize: [REDUCE_WG, 1, 1],
    body: wgsl`
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = ${FLAT_INDEX};
  if (t >= P.outer * P.nChunks * P.inner) { return; }
  let i = t % P.inner;
  let rest = t / P.inner;
  let ch = rest % P.nChunks;
  let o = rest / P.nChunks;
  let k0 = ch * P.chunkLen;
  let k1 = min(P.n, k0 + P.chunkLen);
  var s = ${vec4 ? 'vec4<f32>(0.0)' : '0.0'};
  var idx = (o * P.n + k0) * P.inner + i;
  for (var k = k0; k < k1; k++) {
    s = s + x[idx];
    idx = idx + P.inner;
  }
  let oi = P.outOffset + t;
#if ${accumulate}
  out[oi] = out[oi] + P.scale * s;
#else
  out[oi] = P.scale * s;
#endif
}`,
  }),
);

/** As sumAxis with inner = 1, one workgroup per (outer, chunk): out[outOffset + o·nChunks + ch]. */
export const sumRows = memo(({ accumulate }: { accumulate: boolean }): KernelSpec =>
  kernel({
    name: `reduce.sum_rows${accumulate ? '.acc' : ''}`,
    bindings: [ro('x'), rw('out')],
    uniforms: [
      ['outer', 'u32'],
      ['n', 'u32'],
      ['nChunks', 'u32'],
      ['chunkLen', 'u32'],
      ['scale', 'f32'],
      ['outOffset', 'u32'],
    ],
    workgroupSize: [REDUCE_WG, 1, 1],
    body: wgsl`
${sharedArray('red', 'f32')}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= P.outer * P.nChunks) { return; }
  let ch = t % P.nChunks;
  let o = t / P.nChunks;
  let k0 = ch * P.chunkLen;
  let k1 = min(P.n, k0 + P.chunkLen);
  var s = 0.0;
  for (var k = k0 + l; k < k1; k = k + WG_X) { s = s + x[o * P.n + k]; }
  ${treeReduce({ value: 's' })}
  if (l == 0u) {
    let oi = P.outOffset + t;
#if ${accumulate}
    out[oi] = out[oi] + P.scale * red[0];
#else
    out[oi] = P.scale * red[0];
#endif
  }
}`,
  }),
);

/** out[(o·n + k)·inner + i] = scale · g[o·inner + i]. */
export const broadcastAxis = memo((_: Record<string, never> = {}): KernelSpec =>
  kernel({
    name: 'reduce.broadcast_axis',
    bindings: [ro('g'), rw('out')],
    uniforms: [
      ['total', 'u32'],
      ['n', 'u32'],
      ['inner', 'u32'],
      ['scale', 'f32'],
    ],
    workgroupSize: [REDUCE_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = ${FLAT_INDEX};
  if (t >= P.total) { return; }
  let i = t % P.inner;
  let o = t / (P.n * P.inner);
  out[t] = P.scale * g[o * P.inner + i];
}`,
  }),
);

/**
 * partial[outOffset + t] = Σ_k x[t + k·threads]² (grid-strided: adjacent invocations read adjacent
 * elements, coalesced on GPUs and contiguous SIMD loads on lavapipe; no barriers). `n` counts vec4s
 * in the vec4 form. A workgroup-per-block tree form was much slower on lavapipe (barriers in a SIMD
 * loop; docs/performance.md, roofline section).
 */
export const sumSquaresPartial = memo(({ vec4 }: { vec4: boolean }): KernelSpec =>
  kernel({
    name: `reduce.sumsq_partial${vec4 ? '.vec4' : ''}`,
    bindings: [ro('x', vec4 ? 'array<vec4<f32>>' : 'array<f32>'), rw('partial')],
    uniforms: [
      ['n', 'u32'],
      ['threads', 'u32'],
      ['outOffset', 'u32'],
    ],
    workgroupSize: [SUMSQ_WG, 1, 1],
    body: wgsl`
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = ${FLAT_INDEX};
  if (t >= P.threads) { return; }
  var s = ${vec4 ? 'vec4<f32>(0.0)' : '0.0'};
  for (var i = t; i < P.n; i = i + P.threads) { let v = x[i]; s = s + v * v; }
#if ${vec4}
  partial[P.outOffset + t] = (s.x + s.y) + (s.z + s.w);
#else
  partial[P.outOffset + t] = s;
#endif
}`,
  }),
);

/** out[0] = scale · Σ x[0..n) in a fixed order (one workgroup). */
export const sumAll = memo((_: Record<string, never> = {}): KernelSpec =>
  kernel({
    name: 'reduce.sum_all',
    bindings: [ro('x'), rw('out')],
    uniforms: [
      ['n', 'u32'],
      ['scale', 'f32'],
    ],
    workgroupSize: [REDUCE_WG, 1, 1],
    body: /* wgsl */ `
${sharedArray('red', 'f32')}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_index) l: u32) {
  var s = 0.0;
  for (var k = l; k < P.n; k = k + WG_X) { s = s + x[k]; }
  ${treeReduce({ value: 's' })}
  if (l == 0u) { out[0] = P.scale * red[0]; }
}`,
  }),
);

/** out[i] = alpha · s[0] · x[i]. */
export const scaleByScalar = memo((_: Record<string, never> = {}): KernelSpec =>
  kernel({
    name: 'reduce.scale_by_scalar',
    bindings: [ro('x'), ro('s'), rw('out')],
    uniforms: [
      ['n', 'u32'],
      ['alpha', 'f32'],
    ],
    workgroupSize: [REDUCE_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  out[i] = P.alpha * s[0] * x[i];
}`,
  }),
);
