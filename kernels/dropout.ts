/**
 * Dropout with the counter-based Philox4x32-10 generator (kernels/random.ts): nothing is stored; the
 * backward regenerates the same mask from (seed, step, stream).
 *
 * Convention: key = (seed, step); element i uses word (i mod 4) of Philox(counter = (⌊i/4⌋, stream,
 * 0, 0)), so one Philox call serves four consecutive elements. u = (word >> 8) / 2^24 ∈ [0, 1); the
 * element is kept when u ≥ p and then scaled by 1/(1 − p). One invocation per group of four elements
 * (a vec4 when n % 4 == 0 and offsets are 16-byte aligned; four guarded scalars otherwise).
 */
import { PHILOX_WGSL } from './random.ts';
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export const DROPOUT_WG = 256;

/** out = x · mask · scale, mask from (seed, step, stream); also the backward (x = the gradient). */
export const dropout = memo(({ vec4 }: { vec4: boolean }): KernelSpec =>
  kernel({
    name: `dropout.apply${vec4 ? '.vec4' : ''}`,
    bindings: [ro('x', vec4 ? 'array<vec4<f32>>' : 'array<f32>'), rw('out', vec4 ? 'array<vec4<f32>>' : 'array<f32>')],
    uniforms: [
      ['n', 'u32'],
      ['groups', 'u32'],
      ['seed', 'u32'],
      ['step', 'u32'],
      ['stream', 'u32'],
      ['p', 'f32'],
      ['scale', 'f32'],
    ],
    workgroupSize: [DROPOUT_WG, 1, 1],
    body: /* wgsl */ `
${PHILOX_WGSL}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = ${FLAT_INDEX};
  if (q >= P.groups) { return; }
  let u = philox_uniform4(vec4<u32>(q, P.stream, 0u, 0u), vec2<u32>(P.seed, P.step));
  let keep = u >= vec4<f32>(P.p);
${
  vec4
    ? `  out[q] = select(vec4<f32>(0.0), x[q] * P.scale, keep);`
    : `  for (var j = 0u; j < 4u; j++) {
    let i = q * 4u + j;
    if (i < P.n) { out[i] = select(0.0, x[i] * P.scale, keep[j]); }
  }`
}
}`,
  }),
);
