/**
 * Sum of squares over whole arena chunks (the global gradient norm for clipping), deterministic and
 * without atomics, in two stages with a fixed order:
 *
 *   stage 1 `norm.sumsq_chunk`   one dispatch per chunk, G workgroups (G a uniform, fixed per chunk
 *                                size). Invocation j of workgroup w sums the squares of vec4s
 *                                w·WG + j, + G·WG, + 2·G·WG, … (coalesced grid stride) into a vec4
 *                                accumulator, folds it, and the workgroup tree-reduces the 256
 *                                values in shared memory; partials[base + w] = the result.
 *   stage 2 `norm.sumsq_finish`  one workgroup: invocation j sums partials j, j + WG, … in order,
 *                                tree reduction, out[0] = √total, out[1] = total, out[2] = 1 when
 *                                the total is finite, else 0 (out[3] is left alone).
 *
 * The order of every addition depends only on (chunk sizes, G), never on scheduling, so the result is
 * bitwise reproducible. Chunks are bound whole as array<vec4<f32>> (arena chunks hold a multiple of 4
 * elements, padding zero), so there are no scalar tails.
 *
 * Specialised for arena chunks; the general `sumOfSquares` op lives in kernels/reduce.ts.
 */
import { sharedArray, treeReduce } from './snippets.ts';
import { kernel, ro, rw, type KernelSpec } from './spec.ts';

export const NORM_WG = 256;

const TREE = treeReduce({ arr: 'sh', lane: 'lid.x', value: 'acc' });

/** Stage 1: partial sums of squares of one chunk, one per workgroup. Grid: [groups, 1, 1]. */
export const sumSquaresChunk: KernelSpec = kernel({
  name: 'norm.sumsq_chunk',
  bindings: [ro('x', 'array<vec4<f32>>'), rw('partials')],
  uniforms: [['n4', 'u32'], ['groups', 'u32'], ['base', 'u32']],
  workgroupSize: [NORM_WG, 1, 1],
  body: /* wgsl */ `
${sharedArray('sh', 'f32')}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let stride = P.groups * WG_X;
  var a = vec4<f32>(0.0);
  var i = wid.x * WG_X + lid.x;
  loop {
    if (i >= P.n4) { break; }
    let q = x[i];
    a = a + q * q;
    i = i + stride;
  }
  let acc = (a.x + a.y) + (a.z + a.w);
  ${TREE}
  if (lid.x == 0u) { partials[P.base + wid.x] = sh[0]; }
}`,
});

/**
 * Finiteness of an f32 by its exponent bits. WGSL lets compilers assume floats are finite, so a
 * comparison such as `x != x` may be folded away; the bit test cannot be.
 */
export const IS_FINITE = /* wgsl */ `
fn is_finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }`;

/**
 * Stage 2: total of `count` partials; out[0] = sqrt(total), out[1] = total, out[2] = 1.0 when the
 * total is finite (a NaN or ±Inf gradient, or a sum of squares that overflows f32, gives 0.0).
 * Grid: [1, 1, 1].
 */
export const sumSquaresFinish: KernelSpec = kernel({
  name: 'norm.sumsq_finish',
  bindings: [ro('partials'), rw('out')],
  uniforms: [['count', 'u32']],
  workgroupSize: [NORM_WG, 1, 1],
  body: /* wgsl */ `
${sharedArray('sh', 'f32')}
${IS_FINITE}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < P.count; i = i + WG_X) { acc = acc + partials[i]; }
  ${TREE}
  if (lid.x == 0u) {
    out[0] = sqrt(sh[0]);
    out[1] = sh[0];
    out[2] = select(0.0, 1.0, is_finite(sh[0]));
  }
}`,
});

/** Workgroups stage 1 uses for a chunk of n4 vec4s, at most `maxGroups`. */
export function normGroups(n4: number, maxGroups: number): number {
  return Math.max(1, Math.min(maxGroups, Math.ceil(n4 / NORM_WG)));
}

/**
 * The finiteness gate of one training step, after `norm.sumsq_finish` and before the AdamW update
 * (one invocation). `loss[0]` is the step's loss, `gnorm` the optimizer's [‖g‖, ‖g‖², ok, ·].
 * The step is good when ok = 1 (finite gradient norm) and the loss is finite; then
 *   acc[0] += loss, acc[1] += 1                      (sum and count of good steps)
 * otherwise gnorm[2] = 0 (an AdamW update with `skip` set leaves everything untouched) and
 *   acc[2] += 1                                       (non-finite steps)
 *   acc[3], acc[4], acc[5] = loss, ‖g‖, P.step        (of the first non-finite step since acc was cleared)
 * Counts are f32: exact up to 2^24 steps between clears.
 */
export const stepGate: KernelSpec = kernel({
  name: 'norm.step_gate',
  bindings: [ro('loss'), rw('gnorm'), rw('acc')],
  uniforms: [['step', 'u32']],
  workgroupSize: [1, 1, 1],
  body: /* wgsl */ `
${IS_FINITE}
@compute @workgroup_size(1, 1, 1)
fn main() {
  let l = loss[0];
  let ok = gnorm[2] != 0.0 && is_finite(l);
  if (ok) {
    acc[0] = acc[0] + l;
    acc[1] = acc[1] + 1.0;
  } else {
    gnorm[2] = 0.0;
    if (acc[2] == 0.0) {
      acc[3] = l;
      acc[4] = gnorm[0];
      acc[5] = f32(P.step);
    }
    acc[2] = acc[2] + 1.0;
  }
}`,
});

/**
 * Per-model gradient norms of a stacked store (G models, every parameter [G, ...]): the arena is cut
 * into segments, each inside one model's part of one parameter and at most NORM_SEGMENT_V4 vec4s
 * long, listed model by model so that model g's partials are the contiguous run
 * [g·perGroup, (g+1)·perGroup).
 *
 *   `norm.sumsq_segments`   one dispatch per chunk, one invocation per segment of the chunk:
 *                           partials[seg.partial] = Σ x² over its vec4s, in order. `segs` holds
 *                           (first vec4, vec4 count, partial index) triples.
 *   `norm.sumsq_groups`     one invocation per model: the sum of its partials in order;
 *                           out[g] = √total, out[G + g] = total, out[2G + g] = 1 when finite, else 0.
 */
export const NORM_SEGMENT_V4 = 256;
export const NORM_SEG_WG = 64;

export const sumSquaresSegments: KernelSpec = kernel({
  name: 'norm.sumsq_segments',
  bindings: [ro('x', 'array<vec4<f32>>'), ro('segs', 'array<u32>'), rw('partials')],
  uniforms: [['count', 'u32']],
  workgroupSize: [NORM_SEG_WG, 1, 1],
  body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x;
  if (s >= P.count) { return; }
  let first = segs[3u * s];
  let end = first + segs[3u * s + 1u];
  var a = vec4<f32>(0.0);
  for (var i = first; i < end; i++) { let q = x[i]; a = a + q * q; }
  partials[segs[3u * s + 2u]] = (a.x + a.y) + (a.z + a.w);
}`,
});

export const sumSquaresGroups: KernelSpec = kernel({
  name: 'norm.sumsq_groups',
  bindings: [ro('partials'), rw('out')],
  uniforms: [['groups', 'u32'], ['perGroup', 'u32']],
  workgroupSize: [NORM_SEG_WG, 1, 1],
  body: /* wgsl */ `
${IS_FINITE}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  if (g >= P.groups) { return; }
  var t = 0.0;
  for (var k = g * P.perGroup; k < (g + 1u) * P.perGroup; k++) { t = t + partials[k]; }
  out[g] = sqrt(t);
  out[P.groups + g] = t;
  out[2u * P.groups + g] = select(0.0, 1.0, is_finite(t));
}`,
});
