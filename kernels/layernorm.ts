/**
 * LayerNorm over the last dimension (biased variance, eps in a uniform), with a fused residual-add
 * form. Layout: x [rows, d] row-major; gamma, beta [d]; stats [rows] as vec2(mean, rstd).
 *
 * Variants (same maths, chosen per adapter by the op):
 * - `thread`: one invocation per row, three passes over the row in registers/cache (sum; squared
 *   deviations; write). No barriers: the fast form on lavapipe, where a workgroup is a SIMD loop over
 *   rows.
 * - `wg`: one workgroup (WG_X = 128) per row, strided loads and shared-memory tree reductions (fixed
 *   order). The form for real GPUs and long rows.
 * Both use the two-pass variance (mean first, then Σ(x − mean)²), which is exact for large means.
 *
 * Fused residual (`add`): h = x + r is written while the first pass sums it, and LN reads h back.
 *
 * Grouped (`grouped`): G independent LayerNorms stacked along the rows (the models of a stacked
 * run): rows [g·groupRows, (g+1)·groupRows) use gamma/beta [g·d, (g+1)·d), and the parameter
 * gradients are per group (`bwdParams` chunks never cross a group).
 *
 * Backward:
 * - `bwdDx`: per row, a = mean(g·γ), b = mean(g·γ·x̂); dx = rstd·(g·γ − a − x̂·b) (+ gh, the gradient
 *   arriving at h directly, in the fused form).
 * - `bwdParams`: one invocation per (row chunk, column): partial dγ = Σ g·x̂, dβ = Σ g over its rows in
 *   order. With one chunk it writes (or adds into: `acc` bits) the parameter gradients directly;
 *   otherwise `bwdParamsFinal` sums the chunk partials of both in order and writes or adds them into
 *   the two gradients in one dispatch (two-stage, no atomics).
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { sharedArray, treeReduce } from './snippets.ts';
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export type LayerNormVariant = 'thread' | 'wg';

export const LN_THREAD_WG = 64;
export const LN_ROW_WG = 128;
export const LN_PARAMS_WG = 64;

/** `tree(l, v)`: the workgroup sum of v (every lane gets it); callable repeatedly (the leading barrier lets every lane read the previous result first). */
const TREE_WGSL = (t: string) => /* wgsl */ `
${sharedArray('red', t)}
fn tree(l: u32, v: ${t}) -> ${t} {
  workgroupBarrier();
  ${treeReduce({ value: 'v' })}
  let r = red[0];
  return r;
}`;

/** WGSL helpers for the thread variants over scalar or vec4 elements. */
const vecHelpers = (vec4: boolean) => wgsl`
#if ${vec4}
alias T = vec4<f32>;
fn hsum(v: T) -> f32 { return (v.x + v.y) + (v.z + v.w); }
const W: u32 = 4u;
#else
alias T = f32;
fn hsum(v: T) -> f32 { return v; }
const W: u32 = 1u;
#endif
`;

/** One invocation per row; rows read as vec4 when d % 4 == 0 (the lavapipe form). */
/** `gb`: the offset of the row's gamma/beta (in elements of the binding): its group's, or 0. */
const groupBase = (grouped: boolean, perRow: string) => wgsl`
#if ${grouped}
  let gb = (row / P.groupRows) * ${perRow};
#else
  let gb = 0u;
#endif
`;

const groupUniforms = (grouped: boolean): [string, 'u32'][] => (grouped ? [['groupRows', 'u32']] : []);

const forwardThread = (add: boolean, vec4: boolean, grouped: boolean): KernelSpec => {
  const t = vec4 ? 'array<vec4<f32>>' : 'array<f32>';
  const bindings = add
    ? [ro('x', t), ro('r', t), ro('gamma', t), ro('beta', t), rw('h', t), rw('y', t), rw('stats', 'array<vec2<f32>>')]
    : [ro('x', t), ro('gamma', t), ro('beta', t), rw('y', t), rw('stats', 'array<vec2<f32>>')];
  const src = add ? 'h' : 'x';
  return kernel({
    name: `layernorm.fwd${add ? '_add' : ''}.thread${vec4 ? '.vec4' : ''}${grouped ? '.grouped' : ''}`,
    bindings,
    uniforms: [['rows', 'u32'], ['d', 'u32'], ['eps', 'f32'], ...groupUniforms(grouped)],
    workgroupSize: [LN_THREAD_WG, 1, 1],
    body: wgsl`
${vecHelpers(vec4)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${FLAT_INDEX};
  if (row >= P.rows) { return; }
  let dw = P.d / W;
  let base = row * dw;
${groupBase(grouped, 'dw')}
  let fd = f32(P.d);
  var s = T(0.0);
#if ${add}
  for (var c = 0u; c < dw; c++) { let v = x[base + c] + r[base + c]; h[base + c] = v; s = s + v; }
#else
  for (var c = 0u; c < dw; c++) { s = s + x[base + c]; }
#endif
  let mean = hsum(s) / fd;
  var q = T(0.0);
  for (var c = 0u; c < dw; c++) { let dv = ${src}[base + c] - mean; q = q + dv * dv; }
  let rstd = 1.0 / sqrt(hsum(q) / fd + P.eps);
  for (var c = 0u; c < dw; c++) { y[base + c] = (${src}[base + c] - mean) * rstd * gamma[gb + c] + beta[gb + c]; }
  stats[row] = vec2<f32>(mean, rstd);
}`,
  });
};

const backwardDxThread = (addGrad: boolean, vec4: boolean, grouped: boolean): KernelSpec => {
  const t = vec4 ? 'array<vec4<f32>>' : 'array<f32>';
  return kernel({
    name: `layernorm.bwd_dx${addGrad ? '_add' : ''}.thread${vec4 ? '.vec4' : ''}${grouped ? '.grouped' : ''}`,
    bindings: [ro('x', t), ro('gamma', t), ro('stats', 'array<vec2<f32>>'), ro('gy', t), ...(addGrad ? [ro('gh', t)] : []), rw('dx', t)],
    uniforms: [['rows', 'u32'], ['d', 'u32'], ...groupUniforms(grouped)],
    workgroupSize: [LN_THREAD_WG, 1, 1],
    body: wgsl`
${vecHelpers(vec4)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${FLAT_INDEX};
  if (row >= P.rows) { return; }
  let dw = P.d / W;
  let base = row * dw;
${groupBase(grouped, 'dw')}
  let st = stats[row];
  var a = T(0.0);
  var b = T(0.0);
  for (var c = 0u; c < dw; c++) {
    let xh = (x[base + c] - st.x) * st.y;
    let gg = gy[base + c] * gamma[gb + c];
    a = a + gg;
    b = b + gg * xh;
  }
  let ma = hsum(a) / f32(P.d);
  let mb = hsum(b) / f32(P.d);
  for (var c = 0u; c < dw; c++) {
    let xh = (x[base + c] - st.x) * st.y;
#if ${addGrad}
    dx[base + c] = st.y * (gy[base + c] * gamma[gb + c] - ma - xh * mb) + gh[base + c];
#else
    dx[base + c] = st.y * (gy[base + c] * gamma[gb + c] - ma - xh * mb);
#endif
  }
}`,
  });
};

export const forward = memo(({ variant, add, vec4, grouped = false }: { variant: LayerNormVariant; add: boolean; vec4?: boolean; grouped?: boolean }): KernelSpec => {
  if (variant === 'thread') return forwardThread(add, vec4 ?? false, grouped);
  const bindings = add
    ? [ro('x'), ro('r'), ro('gamma'), ro('beta'), rw('h'), rw('y'), rw('stats', 'array<vec2<f32>>')]
    : [ro('x'), ro('gamma'), ro('beta'), rw('y'), rw('stats', 'array<vec2<f32>>')];
  const src = add ? 'h' : 'x';
  const name = `layernorm.fwd${add ? '_add' : ''}.${variant}${grouped ? '.grouped' : ''}`;
  const uniforms: [string, 'u32' | 'f32'][] = [['rows', 'u32'], ['d', 'u32'], ['eps', 'f32'], ...groupUniforms(grouped)];
  return kernel({
    name,
    bindings,
    uniforms,
    workgroupSize: [LN_ROW_WG, 1, 1],
    body: wgsl`
${TREE_WGSL('f32')}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= P.rows) { return; }
  let base = row * P.d;
${groupBase(grouped, 'P.d')}
  let fd = f32(P.d);
  var s = 0.0;
#if ${add}
  for (var c = l; c < P.d; c = c + WG_X) { let v = x[base + c] + r[base + c]; h[base + c] = v; s = s + v; }
#else
  for (var c = l; c < P.d; c = c + WG_X) { s = s + x[base + c]; }
#endif
  let mean = tree(l, s) / fd;
  var q = 0.0;
  for (var c = l; c < P.d; c = c + WG_X) { let dv = ${src}[base + c] - mean; q = q + dv * dv; }
  let rstd = 1.0 / sqrt(tree(l, q) / fd + P.eps);
  for (var c = l; c < P.d; c = c + WG_X) { y[base + c] = (${src}[base + c] - mean) * rstd * gamma[gb + c] + beta[gb + c]; }
  if (l == 0u) { stats[row] = vec2<f32>(mean, rstd); }
}`,
  });
});

/** dx = rstd·(g·γ − mean(g·γ) − x̂·mean(g·γ·x̂)) (+ gh). `x` is the LN input (h in the fused form). */
export const backwardDx = memo(({ variant, addGrad, vec4, grouped = false }: { variant: LayerNormVariant; addGrad: boolean; vec4?: boolean; grouped?: boolean }): KernelSpec => {
  if (variant === 'thread') return backwardDxThread(addGrad, vec4 ?? false, grouped);
  const bindings = [ro('x'), ro('gamma'), ro('stats', 'array<vec2<f32>>'), ro('gy'), ...(addGrad ? [ro('gh')] : []), rw('dx')];
  const name = `layernorm.bwd_dx${addGrad ? '_add' : ''}.${variant}${grouped ? '.grouped' : ''}`;
  const uniforms: [string, 'u32'][] = [['rows', 'u32'], ['d', 'u32'], ...groupUniforms(grouped)];
  return kernel({
    name,
    bindings,
    uniforms,
    workgroupSize: [LN_ROW_WG, 1, 1],
    body: wgsl`
${TREE_WGSL('vec2<f32>')}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= P.rows) { return; }
  let base = row * P.d;
${groupBase(grouped, 'P.d')}
  let st = stats[row];
  var ab = vec2<f32>(0.0, 0.0);
  for (var c = l; c < P.d; c = c + WG_X) {
    let xh = (x[base + c] - st.x) * st.y;
    let gg = gy[base + c] * gamma[gb + c];
    ab = ab + vec2<f32>(gg, gg * xh);
  }
  let m = tree(l, ab) / f32(P.d);
  for (var c = l; c < P.d; c = c + WG_X) {
    let xh = (x[base + c] - st.x) * st.y;
#if ${addGrad}
    dx[base + c] = st.y * (gy[base + c] * gamma[gb + c] - m.x - xh * m.y) + gh[base + c];
#else
    dx[base + c] = st.y * (gy[base + c] * gamma[gb + c] - m.x - xh * m.y);
#endif
  }
}`,
  });
});

/** Bits of the `acc` uniform of the parameter-gradient kernels: add into dγ / dβ instead of writing. */
export const LN_ACC_GAMMA = 1;
export const LN_ACC_BETA = 2;

/**
 * Per (chunk, column) partial parameter gradients: pg[ch·d + c] = Σ_r g·x̂, pb[ch·d + c] = Σ_r g over
 * rows r of chunk ch, in row order. With nChunks = 1, pg and pb may be the gradients themselves and
 * the `acc` bits add into them (the op's direct accumulation into a parameter's gradient).
 * Grouped: nChunks = G·groupChunks, chunk ch = g·groupChunks + k covers rows g·groupRows + k·chunkLen
 * onwards, up to the end of group g (pg, pb laid out [G, groupChunks, d]).
 */
export const backwardParams = memo(({ grouped = false }: { grouped?: boolean } = {}): KernelSpec =>
  kernel({
    name: `layernorm.bwd_params${grouped ? '.grouped' : ''}`,
    bindings: [ro('x'), ro('stats', 'array<vec2<f32>>'), ro('gy'), rw('pg'), rw('pb')],
    uniforms: [
      ['rows', 'u32'],
      ['d', 'u32'],
      ['nChunks', 'u32'],
      ['chunkLen', 'u32'],
      ['acc', 'u32'],
      ...(grouped ? ([['groupRows', 'u32'], ['groupChunks', 'u32']] as [string, 'u32'][]) : []),
    ],
    workgroupSize: [LN_PARAMS_WG, 1, 1],
    body: wgsl`
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = ${FLAT_INDEX};
  if (t >= P.nChunks * P.d) { return; }
  let c = t % P.d;
  let ch = t / P.d;
#if ${grouped}
  let g0 = (ch / P.groupChunks) * P.groupRows;
  let r0 = g0 + (ch % P.groupChunks) * P.chunkLen;
  let r1 = min(g0 + P.groupRows, r0 + P.chunkLen);
#else
  let r0 = ch * P.chunkLen;
  let r1 = min(P.rows, r0 + P.chunkLen);
#endif
  var sg = 0.0;
  var sb = 0.0;
  for (var r = r0; r < r1; r++) {
    let st = stats[r];
    let i = r * P.d + c;
    let g = gy[i];
    sg = sg + g * (x[i] - st.x) * st.y;
    sb = sb + g;
  }
  if ((P.acc & ${LN_ACC_GAMMA}u) != 0u) { sg = pg[t] + sg; }
  if ((P.acc & ${LN_ACC_BETA}u) != 0u) { sb = pb[t] + sb; }
  pg[t] = sg;
  pb[t] = sb;
}`,
  }),
);

/**
 * Second stage: gg[c] (= or +=) Σ_ch pg[ch·d + c] and gb[c] (= or +=) Σ_ch pb[ch·d + c], chunks in
 * order; one invocation per column, both gradients in one dispatch. G stacked LayerNorms (`G` > 1):
 * the G·d columns of [G, d], group g's partials at (g·nChunks + ch)·d.
 */
export const backwardParamsFinal = memo((_: Record<string, never> = {}): KernelSpec =>
  kernel({
    name: 'layernorm.bwd_params_final',
    bindings: [ro('pg'), ro('pb'), rw('gg'), rw('gb')],
    uniforms: [
      ['d', 'u32'],
      ['nChunks', 'u32'],
      ['acc', 'u32'],
      ['G', 'u32'],
    ],
    workgroupSize: [LN_PARAMS_WG, 1, 1],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = ${FLAT_INDEX};
  if (c >= P.G * P.d) { return; }
  // Column c % d of group c / d: its nChunks partials at (g·nChunks + ch)·d + c % d, in chunk order.
  let g = c / P.d;
  var sg = 0.0;
  var sb = 0.0;
  var i = g * P.nChunks * P.d + c - g * P.d;
  for (var ch = 0u; ch < P.nChunks; ch++) {
    sg = sg + pg[i];
    sb = sb + pb[i];
    i = i + P.d;
  }
  if ((P.acc & ${LN_ACC_GAMMA}u) != 0u) { sg = gg[c] + sg; }
  if ((P.acc & ${LN_ACC_BETA}u) != 0u) { sb = gb[c] + sb; }
  gg[c] = sg;
  gb[c] = sb;
}`,
  }),
);
