/**
 * Microbenchmark kernels that measure the adapter's ceilings (benchmarks/roofline.bench.ts):
 * an FMA loop unrolled 8× over independent accumulators (arithmetic ceiling), and a vec4 copy
 * (bandwidth ceiling).
 */
import { FLAT_INDEX, kernel, memo, rw, ro, type KernelSpec } from './spec.ts';

export const ROOFLINE_WG = 64;

/** Each invocation runs `iters` × 8 independent chains of 4-wide FMAs: 64·iters FLOPs. */
export const fmaPeak = memo(({ unroll }: { unroll: number }): KernelSpec => {
  const chains = Array.from({ length: unroll }, (_, i) => i);
  return kernel({
    name: `roofline.fma.x${unroll}`,
    bindings: [rw('out', 'array<vec4<f32>>')],
    uniforms: [['iters', 'u32'], ['n', 'u32']],
    workgroupSize: [ROOFLINE_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  let s = vec4<f32>(f32(i) * 1e-9);
  let m = vec4<f32>(0.999);
  let c = vec4<f32>(1e-3);
  ${chains.map((k) => `var a${k} = s + vec4<f32>(${k}.0);`).join('\n  ')}
  for (var it = 0u; it < P.iters; it = it + 1u) {
    ${chains.map((k) => `a${k} = fma(a${k}, m, c);`).join('\n    ')}
  }
  out[i] = ${chains.map((k) => `a${k}`).join(' + ')};
}`,
  });
});

/** out[i] = a[i], vec4. */
export const copyVec4: KernelSpec = kernel({
  name: 'roofline.copy.vec4',
  bindings: [ro('a', 'array<vec4<f32>>'), rw('out', 'array<vec4<f32>>')],
  uniforms: [['n', 'u32']],
  workgroupSize: [ROOFLINE_WG, 1, 1],
  body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  out[i] = a[i];
}`,
});
