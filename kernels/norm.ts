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
 *                                tree reduction, out[0] = √total, out[1] = total.
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

/** Stage 2: total of `count` partials; out[0] = sqrt(total), out[1] = total. Grid: [1, 1, 1]. */
export const sumSquaresFinish: KernelSpec = kernel({
  name: 'norm.sumsq_finish',
  bindings: [ro('partials'), rw('out')],
  uniforms: [['count', 'u32']],
  workgroupSize: [NORM_WG, 1, 1],
  body: /* wgsl */ `
${sharedArray('sh', 'f32')}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < P.count; i = i + WG_X) { acc = acc + partials[i]; }
  ${TREE}
  if (lid.x == 0u) {
    out[0] = sqrt(sh[0]);
    out[1] = sh[0];
  }
}`,
});

/** Workgroups stage 1 uses for a chunk of n4 vec4s, at most `maxGroups`. */
export function normGroups(n4: number, maxGroups: number): number {
  return Math.max(1, Math.min(maxGroups, Math.ceil(n4 / NORM_WG)));
}
