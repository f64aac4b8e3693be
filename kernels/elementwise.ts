/**
 * Elementwise kernels: fill, axpby (out = alpha·a + beta·b, which covers add, sub, scale, copy and
 * in-place accumulation), and multiply. Each has a vec4 variant used when the element count is a
 * multiple of 4 (and offsets are 16-byte aligned), and a scalar variant otherwise.
 *
 * Layout: flat arrays; the dispatch is a 2D grid of 1D workgroups (see FLAT_INDEX).
 */
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export const ELEMENTWISE_WG = 256;

/** out[i] = value */
export const fill = memo(({ vec4 }: { vec4: boolean }): KernelSpec => {
  const t = vec4 ? 'vec4<f32>' : 'f32';
  return kernel({
    name: `elementwise.fill${vec4 ? '.vec4' : ''}`,
    bindings: [rw('out', `array<${t}>`)],
    uniforms: [['n', 'u32'], ['value', 'f32']],
    workgroupSize: [ELEMENTWISE_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  out[i] = ${t}(P.value);
}`,
  });
});

/**
 * out[i] = alpha·a[i] + beta·b[i]. With `inplace`, `out` is also the `b` operand
 * (out = alpha·a + beta·out), so gradient accumulation needs no extra buffer.
 */
export const axpby = memo(({ vec4, inplace }: { vec4: boolean; inplace: boolean }): KernelSpec => {
  const t = vec4 ? 'vec4<f32>' : 'f32';
  return kernel({
    name: `elementwise.axpby${inplace ? '.inplace' : ''}${vec4 ? '.vec4' : ''}`,
    bindings: inplace ? [ro('a', `array<${t}>`), rw('out', `array<${t}>`)] : [ro('a', `array<${t}>`), ro('b', `array<${t}>`), rw('out', `array<${t}>`)],
    uniforms: [['n', 'u32'], ['alpha', 'f32'], ['beta', 'f32']],
    workgroupSize: [ELEMENTWISE_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  out[i] = P.alpha * a[i] + P.beta * ${inplace ? 'out' : 'b'}[i];
}`,
  });
});

/** out[i] = a[i] · b[i] */
export const mul = memo(({ vec4 }: { vec4: boolean }): KernelSpec => {
  const t = vec4 ? 'vec4<f32>' : 'f32';
  return kernel({
    name: `elementwise.mul${vec4 ? '.vec4' : ''}`,
    bindings: [ro('a', `array<${t}>`), ro('b', `array<${t}>`), rw('out', `array<${t}>`)],
    uniforms: [['n', 'u32']],
    workgroupSize: [ELEMENTWISE_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  out[i] = a[i] * b[i];
}`,
  });
});
