/**
 * Pointwise activations: GELU (tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))), bias
 * add, and the fused bias + GELU of the MLP, with their backward kernels.
 *
 * Layout: x [rows, cols] row-major (any leading dims flattened into rows), bias [cols]. GELU kernels
 * are flat (one invocation per element, or per vec4 when n % 4 == 0 and offsets are 16-byte
 * aligned); the bias kernels put columns on x and loop over rows (vec4 when cols % 4 == 0).
 *
 * The fused bias + GELU backward is a column kernel: one invocation per (row chunk, column) walks its
 * rows in order, writes dx = g·GELU'(x + b) and sums it into a per-chunk partial of db (the op then
 * sums the partials in chunk order: deterministic, no atomics). Adjacent invocations touch adjacent
 * columns, so reads stay contiguous.
 *
 * Grouped (`grouped`): G stacked biases [G, cols] (the models of a stacked run): rows
 * [g·groupRows, (g+1)·groupRows) add row g of the bias, and the backward's chunks never cross a group
 * (pdb laid out [G, groupChunks, cols]).
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export const ACT_WG = 256;
export const ACT_COL_WG = 64;

/**
 * GELU and its derivative over `T` (f32 or vec4<f32>), through the identity 0.5·(1 + tanh(u)) = σ(2u):
 *   gelu(x) = x·σ(z), z = 2·√(2/π)·(x + 0.044715·x³)
 *   gelu'(x) = σ(z) + 2·x·σ(z)(1 − σ(z))·√(2/π)·(1 + 3·0.044715·x²)
 * the same function as 0.5·x·(1 + tanh(u)) but without the cancellation of 1 + tanh(u) for negative x
 * (and 1 − tanh²) in f32. σ and σ(1 − σ) are formed from e = exp(−|z|) ∈ (0, 1], so nothing overflows;
 * beyond |x| = 20, e = 0 and the clamp only keeps x² finite.
 */
const GELU_CONSTANTS = /* wgsl */ `const GELU_K0: f32 = 0.7978845608028654;
const GELU_K1: f32 = 0.044715;`;

/** gelu_z, gelu and gelu_grad over the type `T`, each name ending in `suffix` (needs GELU_CONSTANTS). */
const geluFunctions = (T: string, suffix = ''): string => /* wgsl */ `
fn gelu_z${suffix}(x: ${T}) -> ${T} { return 2.0 * GELU_K0 * (x + GELU_K1 * x * x * x); }
fn gelu${suffix}(x: ${T}) -> ${T} {
  let z = gelu_z${suffix}(x);
  let e = exp(-abs(z));
  let r = 1.0 / (1.0 + e);
  return x * select(e * r, r, z >= ${T}(0.0));
}
fn gelu_grad${suffix}(x: ${T}) -> ${T} {
  let z = gelu_z${suffix}(x);
  let e = exp(-abs(z));
  let r = 1.0 / (1.0 + e);
  let sig = select(e * r, r, z >= ${T}(0.0));
  let xc = clamp(x, ${T}(-20.0), ${T}(20.0));
  return sig + 2.0 * xc * (e * r * r) * GELU_K0 * (1.0 + 3.0 * GELU_K1 * xc * xc);
}`;

const geluWgsl = (vec4: boolean) => wgsl`
#if ${vec4}
alias T = vec4<f32>;
#else
alias T = f32;
#endif
${GELU_CONSTANTS}
${geluFunctions('T')}`;

/**
 * The same GELU for kernels of other families (the matmul's GELU operand and GELU-derivative
 * epilogue): `gelu_f` / `gelu_grad_f` over f32 and `gelu_v4` / `gelu_grad_v4` over vec4<f32>.
 */
export const GELU_HELPERS = `${GELU_CONSTANTS}
${geluFunctions('f32', '_f')}
${geluFunctions('vec4<f32>', '_v4')}`;

const arr = (vec4: boolean) => (vec4 ? 'array<vec4<f32>>' : 'array<f32>');

/** y = gelu(x) */
export const geluForward = memo(({ vec4 }: { vec4: boolean }): KernelSpec =>
  kernel({
    name: `activation.gelu${vec4 ? '.vec4' : ''}`,
    bindings: [ro('x', arr(vec4)), rw('y', arr(vec4))],
    uniforms: [['n', 'u32']],
    workgroupSize: [ACT_WG, 1, 1],
    body: /* wgsl */ `
${geluWgsl(vec4)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  y[i] = gelu(x[i]);
}`,
  }),
);

/** dx = g · gelu'(x) */
export const geluBackward = memo(({ vec4 }: { vec4: boolean }): KernelSpec =>
  kernel({
    name: `activation.gelu_bwd${vec4 ? '.vec4' : ''}`,
    bindings: [ro('x', arr(vec4)), ro('g', arr(vec4)), rw('dx', arr(vec4))],
    uniforms: [['n', 'u32']],
    workgroupSize: [ACT_WG, 1, 1],
    body: /* wgsl */ `
${geluWgsl(vec4)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  dx[i] = g[i] * gelu_grad(x[i]);
}`,
  }),
);

/**
 * y = act(x + b[col]) with act = identity (bias add) or GELU. 2-D: gid.x is the column (or vec4 of
 * columns), and each invocation walks rows gid.y, gid.y + nwg.y, ... (no integer division per
 * element; on lavapipe twice as fast as one invocation per element with a modulo). Grouped: gid.z is
 * the group, and the walk covers that group's rows.
 */
export const biasForward = memo(({ vec4, gelu, grouped = false }: { vec4: boolean; gelu: boolean; grouped?: boolean }): KernelSpec =>
  kernel({
    name: `activation.${gelu ? 'bias_gelu' : 'bias_add'}${vec4 ? '.vec4' : ''}${grouped ? '.grouped' : ''}`,
    bindings: [ro('x', arr(vec4)), ro('b', arr(vec4)), rw('y', arr(vec4))],
    uniforms: [['rows', 'u32'], ['cols', 'u32'], ...(grouped ? ([['groupRows', 'u32']] as [string, 'u32'][]) : [])],
    workgroupSize: [ACT_COL_WG, 1, 1],
    body: wgsl`
${geluWgsl(vec4)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x;
  if (c >= P.cols) { return; }
#if ${grouped}
  // grid z: the group; rows of the group walked as below
  let bc = b[gid.z * P.cols + c];
  let r0 = gid.z * P.groupRows;
  let r1 = r0 + P.groupRows;
#else
  let bc = b[c];
  let r0 = 0u;
  let r1 = P.rows;
#endif
  for (var r = r0 + gid.y; r < r1; r = r + nwg.y) {
    let i = r * P.cols + c;
#if ${gelu}
    y[i] = gelu(x[i] + bc);
#else
    y[i] = x[i] + bc;
#endif
  }
}`,
  }),
);

/**
 * Fused bias + GELU backward, one invocation per (chunk, column): for rows r of the chunk in order,
 * dx[r, c] = g[r, c]·gelu'(x[r, c] + b[c]); pdb[ch·cols + c] = Σ dx[r, c].
 */
export const biasGeluBackward = memo(({ vec4, grouped = false }: { vec4: boolean; grouped?: boolean }): KernelSpec =>
  kernel({
    name: `activation.bias_gelu_bwd${vec4 ? '.vec4' : ''}${grouped ? '.grouped' : ''}`,
    bindings: [ro('x', arr(vec4)), ro('b', arr(vec4)), ro('g', arr(vec4)), rw('dx', arr(vec4)), rw('pdb', arr(vec4))],
    uniforms: [
      ['rows', 'u32'],
      ['cols', 'u32'],
      ['nChunks', 'u32'],
      ['chunkLen', 'u32'],
      ...(grouped ? ([['groupRows', 'u32'], ['groupChunks', 'u32']] as [string, 'u32'][]) : []),
    ],
    workgroupSize: [ACT_COL_WG, 1, 1],
    body: wgsl`
${geluWgsl(vec4)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = ${FLAT_INDEX};
  if (t >= P.nChunks * P.cols) { return; }
  let c = t % P.cols;
  let ch = t / P.cols;
#if ${grouped}
  let grp = ch / P.groupChunks;
  let g0 = grp * P.groupRows;
  let r0 = g0 + (ch % P.groupChunks) * P.chunkLen;
  let r1 = min(g0 + P.groupRows, r0 + P.chunkLen);
  let bc = b[grp * P.cols + c];
#else
  let r0 = ch * P.chunkLen;
  let r1 = min(P.rows, r0 + P.chunkLen);
  let bc = b[c];
#endif
  var s = T(0.0);
  for (var r = r0; r < r1; r++) {
    let i = r * P.cols + c;
    let v = g[i] * gelu_grad(x[i] + bc);
    dx[i] = v;
    s = s + v;
  }
  pdb[t] = s;
}`,
  }),
);
