/**
 * AdamW update over one arena chunk (decoupled weight decay, as PyTorch's `torch.optim.AdamW`), with
 * global gradient-norm clipping read from a device buffer and a per-element flags word.
 *
 * Per element, with c = min(1, maxNorm / (‖g‖ + 1e-6)) when clipping (PyTorch's clip_grad_norm_):
 *   g ← c·g
 *   p ← p·(1 − lr·wd)                      (only where the decay bit is set)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / bc1) · m / (√v / √bc2 + eps)     bc1 = 1 − β1^t, bc2 = 1 − β2^t
 * Elements whose trainable bit is clear keep p, m and v untouched.
 *
 * Layout: the params, grads, m and v chunks share one ArenaLayout, so one flat index walks all four.
 * `flags` packs 2 bits per element, 16 elements per u32: element k has its decay bit at
 * 2·(k mod 16) and its trainable bit at 2·(k mod 16) + 1 of word k / 16. In the vec4 variant the
 * vec4 with index i reads byte (i mod 4) of word i / 4. Padding between tensors has flags 0 and is
 * never written (it stays zero in every arena).
 *
 * All hyperparameters, the learning rate, the step t and the bias corrections travel as uniforms, so a
 * schedule never recompiles. bc1, bc2, 1 − β1 and 1 − β2 are computed on the CPU in float64 and
 * rounded once (as PyTorch does with its Python-float scalars): computed in f32 from β2 = f32(0.999),
 * 1 − β2 is off by 1.3e-5 relative, and 1 − β2^t at t = 1 likewise.
 *
 * `gnorm[0]` holds the global gradient norm written by kernels/norm.ts earlier in the same pass, and
 * `gnorm[2]` its finiteness flag (1.0 finite, 0.0 not; `norm.step_gate` also clears it for a
 * non-finite loss). With the `skip` uniform set, a step whose flag is 0 writes nothing: the weights
 * and both moments stay bitwise what they were.
 *
 * Grouped (`grouped`, a stacked store of G models): `groupOf` gives each vec4 of the chunk its model
 * g, `gnorm` holds [‖g_0‖ … ‖g_{G−1}‖, squares, finite flags] (kernels/norm.ts `norm.sumsq_groups`),
 * and clipping and `skip` use the element's own model's norm and flag.
 *
 * Variants: `vec4` (vec4s, the one used) and `scalar` (single elements, the reference), each with an
 * `unroll` specialisation (U items per invocation at i, i + stride, …). All do the same f32 operations
 * per element, so they agree bitwise.
 */
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export const ADAMW_WG = 256;

export type AdamWVariant = 'vec4' | 'scalar';

export const ADAMW_UNIFORMS: [string, 'u32' | 'f32'][] = [
  ['n', 'u32'], // vec4 count (vec4) or element count (scalar) of the chunk
  ['stride', 'u32'], // invocations: ceil(n / unroll)
  ['clip', 'u32'], // 1: scale gradients by min(1, max_norm / (gnorm + 1e-6))
  ['step', 'u32'], // t (1-based), the step being taken
  ['lr', 'f32'],
  ['beta1', 'f32'],
  ['beta2', 'f32'],
  ['omb1', 'f32'], // 1 − β1 (float64 on the CPU: 1 − f32(0.999) is off by 1.3e-5 relative)
  ['omb2', 'f32'], // 1 − β2
  ['eps', 'f32'],
  ['wd', 'f32'],
  ['bc1', 'f32'], // 1 − β1^t (float64 on the CPU, rounded to f32)
  ['bc2', 'f32'], // 1 − β2^t
  ['max_norm', 'f32'],
  ['skip', 'u32'], // 1: leave p, m, v untouched when gnorm[2] == 0 (a non-finite step)
];

const UPDATE = (grouped: boolean, v4: boolean) => /* wgsl */ `
${grouped ? `  let grp = groupOf[${v4 ? 'i' : 'i >> 2u'}];\n  if (P.skip != 0u && gnorm[2u * P.groups + grp] == 0.0) { return; }` : ''}
  var coef = 1.0;
  if (P.clip != 0u) { coef = min(1.0, P.max_norm / (gnorm[${grouped ? 'grp' : '0'}] + 1e-6)); }
  let g = grad[i] * coef;
  let p0 = param[i];
  let m0 = exp_avg[i];
  let v0 = exp_avg_sq[i];
  let m1 = P.beta1 * m0 + P.omb1 * g;
  let v1 = P.beta2 * v0 + P.omb2 * (g * g);
  let pd = select(p0, p0 * (1.0 - P.lr * P.wd), decay);
  let denom = sqrt(v1) / sqrt(P.bc2) + P.eps;
  let p1 = pd - (P.lr / P.bc1) * (m1 / denom);
  param[i] = select(p0, p1, train);
  exp_avg[i] = select(m0, m1, train);
  exp_avg_sq[i] = select(v0, v1, train);`;

export interface AdamWKernelOptions {
  variant: AdamWVariant;
  /**
   * Elements (scalar) or vec4s (vec4) per invocation, at i, i + stride, i + 2·stride, … with
   * stride = ceil(n / unroll) (a uniform): coalesced on GPUs, fewer invocations on lavapipe.
   */
  unroll?: number;
  /** Per-model norms and flags of a stacked store (binds `groupOf`, adds the `groups` uniform). */
  grouped?: boolean;
}

export const adamw = memo(({ variant, unroll = 1, grouped = false }: AdamWKernelOptions): KernelSpec => {
  if (!Number.isInteger(unroll) || unroll < 1 || unroll > 16) throw new Error(`adamw: unroll ${unroll} must be an integer in [1, 16]`);
  const v4 = variant === 'vec4';
  const t = v4 ? 'array<vec4<f32>>' : 'array<f32>';
  const flagsCode = v4
    ? /* wgsl */ `
  let byte = vec4<u32>((flags[i >> 2u] >> ((i & 3u) * 8u)) & 0xFFu);
  let train = ((byte >> vec4<u32>(1u, 3u, 5u, 7u)) & vec4<u32>(1u)) == vec4<u32>(1u);
  if (!any(train)) { return; }
  let decay = ((byte >> vec4<u32>(0u, 2u, 4u, 6u)) & vec4<u32>(1u)) == vec4<u32>(1u);`
    : /* wgsl */ `
  let bits = (flags[i >> 4u] >> ((i & 15u) * 2u)) & 3u;
  let train = (bits & 2u) != 0u;
  if (!train) { return; }
  let decay = (bits & 1u) != 0u;`;
  const calls = Array.from({ length: unroll }, (_, k) => `  update(j${k ? ` + ${k}u * P.stride` : ''});`).join('\n');
  return kernel({
    name: `adamw.${variant}${unroll > 1 ? `.u${unroll}` : ''}${grouped ? '.grouped' : ''}`,
    bindings: [
      rw('param', t),
      ro('grad', t),
      rw('exp_avg', t),
      rw('exp_avg_sq', t),
      ro('flags', 'array<u32>'),
      ro('gnorm', 'array<f32>'),
      ...(grouped ? [ro('groupOf', 'array<u32>')] : []),
    ],
    uniforms: grouped ? [...ADAMW_UNIFORMS, ['groups', 'u32']] : ADAMW_UNIFORMS,
    workgroupSize: [ADAMW_WG, 1, 1],
    body: /* wgsl */ `
fn update(i: u32) {
  if (i >= P.n) { return; }
${flagsCode}
${UPDATE(grouped, v4)}
}

@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = ${FLAT_INDEX};
  if (j >= P.stride) { return; }
${grouped ? '' : '  if (P.skip != 0u && gnorm[2] == 0.0) { return; }'}
${calls}
}`,
  });
});

/** Flag bits of one element (2 bits, 16 elements per u32 word). */
export const FLAG_DECAY = 1;
export const FLAG_TRAINABLE = 2;
export const FLAG_BITS = 2;
export const FLAGS_PER_WORD = 16;
