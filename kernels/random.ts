/**
 * Counter-based random numbers in WGSL: Philox4x32-10 (Salmon et al., SC'11). A value depends only on
 * (key, counter), so dropout masks are reproducible from (seed, step, position) and a resumed run
 * draws exactly what the uninterrupted run would have.
 *
 * Convention used by every kernel here: key = (seed, step), counter = (index, stream, 0, 0), where
 * `stream` separates independent uses (e.g. embedding dropout vs a layer's residual dropout) and index
 * selects four elements: element i uses word i mod 4 of the call with counter index ⌊i/4⌋ (one Philox
 * call per four elements). Each call yields four u32; `philox_uniform4` maps them to [0, 1) with
 * 24 bits of mantissa: u = f32(x >> 8) / 2^24.
 */
export const PHILOX_WGSL = /* wgsl */ `
const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// High and low 32 bits of the 64-bit product a*b, from 16-bit halves (WGSL has no u64).
fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xFFFFu; let a1 = a >> 16u;
  let b0 = b & 0xFFFFu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
  let r0 = philox_mulhilo(PHILOX_M0, c.x);
  let r1 = philox_mulhilo(PHILOX_M1, c.z);
  return vec4<u32>(r1.x ^ c.y ^ k.x, r1.y, r0.x ^ c.w ^ k.y, r0.y);
}

fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var i = 0u; i < 10u; i = i + 1u) {
    c = philox_round(c, k);
    k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return c;
}

fn philox_uniform4(counter: vec4<u32>, key: vec2<u32>) -> vec4<f32> {
  let x = philox4x32(counter, key);
  return vec4<f32>(x >> vec4<u32>(8u)) * (1.0 / 16777216.0);
}
`;
