/**
 * Mixed precision (engine/precision.ts): the casts to half-precision storage (f16, bf16), and the
 * dynamic loss scale's two passes.
 *
 *   precision.cast_bf16      the same for bfloat16 (see castBf16): no clamp (bf16 has f32's range),
 *                            the flag only for NaN / ±Inf; runs on any adapter.
 *   precision.cast_f16       out[i] = f16(x[i]), or ±65504 by sign where |x[i]| > 65504 (or x is
 *                            NaN / ±Inf), which also sets flags[P.slot] = 1. The clamp makes the
 *                            conversion defined (WGSL leaves an out-of-range f32 → f16 conversion to
 *                            the implementation); the flag is how an overflow is seen (slot 0: a
 *                            gradient cast, which makes the step skip and the scale back off; slot 1:
 *                            an activation or weight cast, only counted).
 *   precision.unscale        g[i] = g[i] · (1 / state[0]) over an arena chunk (the gradients of a
 *                            loss seeded with the scale S = state[0]; S is a power of 2, so exact
 *                            unless a value is subnormal).
 *   precision.scale_update   after the step's gradient norm (gnorm[2]: 1 finite, 0 not) and before
 *                            the AdamW update: a gradient overflow or a non-finite norm clears
 *                            gnorm[2] (AdamW then skips the step), halves S (not below `min_scale`),
 *                            resets the run of good steps and counts a skipped step; otherwise the
 *                            run grows and S doubles (up to `max_scale`) after `interval` good steps
 *                            in a row (PyTorch's GradScaler rule). Clears the flags. Grid [1, 1, 1].
 *
 * State (f32): [S, good steps in a row, steps skipped for overflow, steps with an activation
 * overflow]. Flags (u32): [gradient overflow, activation overflow].
 *
 * Finiteness and range are tested on the f32 bits: WGSL lets compilers assume floats are finite, so
 * `abs(x) > 65504.0` could be folded for a NaN; `(bits & 0x7fffffff) > 0x477fe000` cannot (0x477fe000
 * is 65504.0, and every NaN and ±Inf has larger magnitude bits).
 */
import { FLAT_INDEX, kernel, memo, ro, rw, type KernelSpec } from './spec.ts';

export const PRECISION_WG = 256;

/** Largest finite half. */
export const HALF_MAX = 65504;
/** Flag slots. */
export const FLAG_GRADIENT = 0;
export const FLAG_ACTIVATION = 1;

/**
 * f32 → bf16 storage (`precision.cast_bf16`): element 2i into the low and 2i+1 into the high half of
 * word i, each the upper 16 bits of the f32 rounded to nearest, ties to even (NaN kept a NaN). bf16
 * has f32's range: only NaN, ±Inf and values that round past the largest finite bf16 set the flag.
 * One invocation per word (pairs; vec4: two words from four elements); the last pair of an odd count
 * takes 0 as its second element.
 */
export const castBf16 = memo(({ vec4 }: { vec4: boolean }): KernelSpec =>
  kernel({
    name: `precision.cast_bf16${vec4 ? '.vec4' : ''}`,
    bindings: [ro('x', `array<${vec4 ? 'vec4<f32>' : 'f32'}>`), rw('out', `array<${vec4 ? 'vec2<u32>' : 'u32'}>`), rw('flags', 'array<atomic<u32>>')],
    uniforms: [
      ['n', 'u32'],
      ['slot', 'u32'],
    ],
    workgroupSize: [PRECISION_WG, 1, 1],
    body: /* wgsl */ `
// The bf16 bits of v (in the low 16 bits): round to nearest even on the f32 bits; NaN stays quiet NaN.
fn bf16_bits(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u) { return (b >> 16u) | 0x40u; }
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}
// A rounded value that is ±Inf or NaN.
fn bad(h: u32) -> bool { return (h & 0x7f80u) == 0x7f80u; }

@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
${
  vec4
    ? `  if (i >= P.n) { return; }
  let v = x[i];
  let h0 = bf16_bits(v.x); let h1 = bf16_bits(v.y); let h2 = bf16_bits(v.z); let h3 = bf16_bits(v.w);
  if (bad(h0) || bad(h1) || bad(h2) || bad(h3)) { atomicStore(&flags[P.slot], 1u); }
  out[i] = vec2<u32>(h0 | (h1 << 16u), h2 | (h3 << 16u));`
    : `  if (2u * i >= P.n) { return; }
  let h0 = bf16_bits(x[2u * i]);
  var h1 = 0u;
  if (2u * i + 1u < P.n) { h1 = bf16_bits(x[2u * i + 1u]); }
  if (bad(h0) || bad(h1)) { atomicStore(&flags[P.slot], 1u); }
  out[i] = h0 | (h1 << 16u);`
}
}`,
  }),
);

/** f32 → f16 storage, vec4 when the element count is a multiple of 4. */
export const castHalf = memo(({ vec4 }: { vec4: boolean }): KernelSpec => {
  const tin = vec4 ? 'vec4<f32>' : 'f32';
  const tout = vec4 ? 'vec4<f16>' : 'f16';
  const bits = vec4 ? 'vec4<u32>' : 'u32';
  return kernel({
    name: `precision.cast_f16${vec4 ? '.vec4' : ''}`,
    bindings: [ro('x', `array<${tin}>`), rw('out', `array<${tout}>`), rw('flags', 'array<atomic<u32>>')],
    uniforms: [
      ['n', 'u32'],
      ['slot', 'u32'],
    ],
    workgroupSize: [PRECISION_WG, 1, 1],
    requires: ['shader-f16'],
    body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n) { return; }
  let v = x[i];
  let over = (bitcast<${bits}>(v) & ${bits}(0x7fffffffu)) > ${bits}(0x477fe000u);
  if (${vec4 ? 'any(over)' : 'over'}) { atomicStore(&flags[P.slot], 1u); }
  // Out of range: ±65504 by sign (a NaN's sign is whatever the comparison gives).
  let big = select(${tin}(${HALF_MAX}.0), ${tin}(-${HALF_MAX}.0), v < ${tin}(0.0));
  out[i] = ${tout}(select(v, big, over));
}`,
  });
});

/** g ← g / S over n vec4s of a gradient chunk. */
export const unscale: KernelSpec = kernel({
  name: 'precision.unscale',
  bindings: [rw('g', 'array<vec4<f32>>'), ro('state', 'array<f32>')],
  uniforms: [['n4', 'u32']],
  workgroupSize: [PRECISION_WG, 1, 1],
  body: /* wgsl */ `
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= P.n4) { return; }
  g[i] = g[i] * (1.0 / state[0]);
}`,
});

/** The loss scale's update after a step's gradient norm (see the header). */
export const scaleUpdate: KernelSpec = kernel({
  name: 'precision.scale_update',
  bindings: [rw('state', 'array<f32>'), rw('flags', 'array<u32>'), rw('gnorm', 'array<f32>')],
  uniforms: [
    ['interval', 'u32'],
    ['backoff', 'f32'],
    ['growth', 'f32'],
    ['min_scale', 'f32'],
    ['max_scale', 'f32'],
  ],
  workgroupSize: [1, 1, 1],
  body: /* wgsl */ `
@compute @workgroup_size(1, 1, 1)
fn main() {
  let found = flags[${FLAG_GRADIENT}] != 0u || gnorm[2] == 0.0;
  if (found) {
    gnorm[2] = 0.0;
    state[0] = max(state[0] * P.backoff, P.min_scale);
    state[1] = 0.0;
    state[2] = state[2] + 1.0;
  } else {
    let good = state[1] + 1.0;
    if (good >= f32(P.interval)) {
      state[0] = min(state[0] * P.growth, P.max_scale);
      state[1] = 0.0;
    } else {
      state[1] = good;
    }
  }
  if (flags[${FLAG_ACTIVATION}] != 0u) { state[3] = state[3] + 1.0; }
  flags[${FLAG_GRADIENT}] = 0u;
  flags[${FLAG_ACTIVATION}] = 0u;
}`,
});
