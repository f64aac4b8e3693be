/**
 * Softmax cross-entropy with a per-position loss mask, argmax and masked accuracy.
 * Layout: logits [N, V] row-major, targets i32 [N], mask f32 [N].
 *
 * `rows` (one kernel per row): online softmax (running max m and Σ exp(x − m) rescaled when the
 * max grows, taken four logits at a time so there are 1.25 exps per logit), then
 *   pairs[row] = (mask·(m + log Σ − x[target]), mask)       (mask forced to 0 when the target is
 *                                                           outside [0, V): the row is ignored)
 *   lse[row] = m + log Σ                                    (only with `lse`: saved for backward)
 * `gradRows` (the backward, one pass over the logits): grad[row, j] = (exp(x_j − lse) − [j = target])
 * · mask · g / Σ mask. Recomputing the softmax there costs one read of the logits; saving the
 * gradient in the forward instead cost a write there plus a read-modify-write pass to scale it.
 * Variants: `thread` (one invocation per row, lavapipe) and `wg` (one workgroup per row: each
 * invocation runs the online softmax over a strided slice, then the (max, sum) pairs are merged in a
 * fixed tree order).
 *
 * `final`: one workgroup sums the pairs in a fixed order: loss = Σ mask·CE / Σ mask (0 when Σ mask = 0)
 * and inv = 1 / Σ mask (0 when Σ mask = 0); or, in `raw` mode, writes both sums (accuracy).
 *
 * `argmax`: per row, the index of the largest logit (ties → lowest index, as PyTorch; rows with NaNs
 * give an unspecified index); with `accuracy`, pairs[row] = (mask·[argmax = target], mask) instead.
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { sharedArray, treeReduce } from './snippets.ts';
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export type RowVariant = 'thread' | 'wg';

export const CE_THREAD_WG = 64;
export const CE_ROW_WG = 256;
export const CE_FINAL_WG = 256;

const NEG = '-3.4028234e38';

/**
 * Entry point of a row kernel: the row index (one invocation per row for `thread`, one workgroup per
 * row for `wg`, both from a possibly 2-D grid), the early return past N, and the row's base offset.
 */
function rowEntry(variant: RowVariant): string {
  return wgsl`@compute @workgroup_size(WG_X, 1, 1)
#if ${variant === 'thread'}
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = ${FLAT_INDEX};
#else
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) l: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
#endif
  if (row >= P.N) { return; }
  let base = row * P.V;`;
}

/** The row's target and mask (mask forced to 0 when the target is outside [0, V)). */
const TARGET_MASK = `let tgt = targets[row];
  let mk = select(0.0, mask[row], tgt >= 0 && u32(tgt) < P.V);`;

/** Online softmax over one invocation's elements j = j0, j0 + step, ... < V (step 1: four at a time). */
const ONLINE_WGSL = /* wgsl */ `
fn merge_ms(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}`;

export const rows = memo(({ variant, lse }: { variant: RowVariant; lse: boolean }): KernelSpec => {
  const bindings = [ro('logits'), ro('targets', 'array<i32>'), ro('mask'), rw('pairs', 'array<vec2<f32>>'), ...(lse ? [rw('lse')] : [])];
  const uniforms: [string, 'u32'][] = [
    ['N', 'u32'],
    ['V', 'u32'],
  ];
  const name = `cross_entropy.rows${lse ? '.lse' : ''}.${variant}`;
  if (variant === 'thread')
    return kernel({
      name,
      bindings,
      uniforms,
      workgroupSize: [CE_THREAD_WG, 1, 1],
      body: wgsl`
${rowEntry('thread')}
  ${TARGET_MASK}
  var m = ${NEG};
  var s = 0.0;
  var j = 0u;
  for (; j + 4u <= P.V; j = j + 4u) {
    let v = vec4<f32>(logits[base + j], logits[base + j + 1u], logits[base + j + 2u], logits[base + j + 3u]);
    let mn = max(m, max(max(v.x, v.y), max(v.z, v.w)));
    let ev = exp(v - mn);
    s = s * exp(m - mn) + ((ev.x + ev.y) + (ev.z + ev.w));
    m = mn;
  }
  for (; j < P.V; j++) {
    let v = logits[base + j];
    let mn = max(m, v);
    s = s * exp(m - mn) + exp(v - mn);
    m = mn;
  }
  var loss = 0.0;
  if (mk != 0.0) { loss = mk * (m + log(s) - logits[base + u32(tgt)]); }
  pairs[row] = vec2<f32>(loss, mk);
#if ${lse}
  lse[row] = m + log(s);
#endif
}`,
    });
  return kernel({
    name,
    bindings,
    uniforms,
    workgroupSize: [CE_ROW_WG, 1, 1],
    body: wgsl`
${sharedArray('red', 'vec2<f32>')}
${ONLINE_WGSL}
${rowEntry('wg')}
  ${TARGET_MASK}
  var m = ${NEG};
  var s = 0.0;
  for (var j = l; j < P.V; j = j + WG_X) {
    let v = logits[base + j];
    let mn = max(m, v);
    s = s * exp(m - mn) + exp(v - mn);
    m = mn;
  }
  ${treeReduce({ op: { fn: 'merge_ms' }, value: 'vec2<f32>(m, s)' })}
  let ms = red[0];
  if (l == 0u) {
    var loss = 0.0;
    if (mk != 0.0) { loss = mk * (ms.x + log(ms.y) - logits[base + u32(tgt)]); }
    pairs[row] = vec2<f32>(loss, mk);
#if ${lse}
    lse[row] = ms.x + log(ms.y);
#endif
  }
}`,
  });
});

/**
 * Sum the per-row pairs (fixed order). `ratio`: loss[0] = Σa / Σb (0 if Σb = 0), inv[0] = 1/Σb (0 if
 * Σb = 0). `raw`: out[0] = Σa, out[1] = Σb.
 */
export const finalSum = memo(({ mode }: { mode: 'ratio' | 'raw' }): KernelSpec =>
  kernel({
    name: `cross_entropy.final.${mode}`,
    bindings: mode === 'ratio' ? [ro('pairs', 'array<vec2<f32>>'), rw('loss'), rw('inv')] : [ro('pairs', 'array<vec2<f32>>'), rw('out')],
    uniforms: [['N', 'u32']],
    workgroupSize: [CE_FINAL_WG, 1, 1],
    body: wgsl`
${sharedArray('red', 'vec2<f32>')}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_index) l: u32) {
  var s = vec2<f32>(0.0, 0.0);
  for (var k = l; k < P.N; k = k + WG_X) { s = s + pairs[k]; }
  ${treeReduce({ value: 's' })}
  if (l == 0u) {
    let t = red[0];
#if ${mode === 'ratio'}
    loss[0] = select(0.0, t.x / t.y, t.y != 0.0);
    inv[0] = select(0.0, 1.0 / t.y, t.y != 0.0);
#else
    out[0] = t.x;
    out[1] = t.y;
#endif
  }
}`,
  }),
);

/**
 * The backward: grad[row, j] = (exp(x_j − lse[row]) − [j = target])·mask·g[0]·inv[0] (0 for ignored
 * rows), g the upstream gradient of the loss and inv = 1 / Σ mask from `finalSum`.
 */
export const gradRows = memo(({ variant }: { variant: RowVariant }): KernelSpec => {
  const bindings = [ro('logits'), ro('targets', 'array<i32>'), ro('mask'), ro('lse'), ro('g'), ro('inv'), rw('grad')];
  const uniforms: [string, 'u32'][] = [
    ['N', 'u32'],
    ['V', 'u32'],
  ];
  const thread = variant === 'thread';
  return kernel({
    name: `cross_entropy.grad.${variant}`,
    bindings,
    uniforms,
    workgroupSize: [thread ? CE_THREAD_WG : CE_ROW_WG, 1, 1],
    body: wgsl`
${rowEntry(variant)}
  ${TARGET_MASK}
  let sc = mk * (g[0] * inv[0]);
  let c = lse[row];
#if ${thread}
  for (var k = 0u; k < P.V; k = k + 1u) {
#else
  for (var k = l; k < P.V; k = k + WG_X) {
#endif
    let p = exp(logits[base + k] - c);
    grad[base + k] = select(0.0, (p - select(0.0, 1.0, i32(k) == tgt)) * sc, mk != 0.0);
  }
}`,
  });
});

/**
 * Tree step of the workgroup argmax over (rv, ri): slot `from` replaces slot `into` if it is larger,
 * or equal with a lower index (empty slots have index ~0u).
 */
const ARGMAX_STEP = (into: string, from: string): string => /* wgsl */ `let ov = rv[${from}];
      let oi = ri[${from}];
      if (oi != 0xffffffffu && (ri[${into}] == 0xffffffffu || ov > rv[${into}] || (ov == rv[${into}] && oi < ri[${into}]))) {
        rv[${into}] = ov;
        ri[${into}] = oi;
      }`;

/** Row argmax (ties → lowest index); with `accuracy`, pairs[row] = (mask·[argmax = target], mask). */
export const argmax = memo(({ variant, accuracy }: { variant: RowVariant; accuracy: boolean }): KernelSpec => {
  const bindings = accuracy
    ? [ro('logits'), ro('targets', 'array<i32>'), ro('mask'), rw('pairs', 'array<vec2<f32>>')]
    : [ro('logits'), rw('idx', 'array<i32>')];
  const uniforms: [string, 'u32'][] = [
    ['N', 'u32'],
    ['V', 'u32'],
  ];
  const name = `cross_entropy.${accuracy ? 'accuracy' : 'argmax'}.${variant}`;
  const emit = wgsl`
#if ${accuracy}
    ${TARGET_MASK}
    pairs[row] = vec2<f32>(select(0.0, mk, i32(bi) == tgt), mk);
#else
    idx[row] = i32(bi);
#endif
`;
  if (variant === 'thread')
    return kernel({
      name,
      bindings,
      uniforms,
      workgroupSize: [CE_THREAD_WG, 1, 1],
      body: /* wgsl */ `
${rowEntry('thread')}
  var best = ${NEG};
  var bi = 0u;
  var found = false;
  for (var j = 0u; j < P.V; j++) {
    let v = logits[base + j];
    if (v > best || !found) { best = v; bi = j; found = true; }
  }
  {
    ${emit}
  }
}`,
    });
  return kernel({
    name,
    bindings,
    uniforms,
    workgroupSize: [CE_ROW_WG, 1, 1],
    body: /* wgsl */ `
${sharedArray('rv', 'f32')}
${sharedArray('ri', 'u32')}
${rowEntry('wg')}
  var best = ${NEG};
  var bi = 0xffffffffu;
  for (var j = l; j < P.V; j = j + WG_X) {
    let v = logits[base + j];
    if (v > best || bi == 0xffffffffu) { best = v; bi = j; }
  }
  rv[l] = best;
  ri[l] = bi;
  ${treeReduce({ op: { step: ARGMAX_STEP } })}
  if (l == 0u) {
    let bi = select(ri[0], 0u, ri[0] == 0xffffffffu);
    ${emit}
  }
}`,
  });
});
