/**
 * IEEE 754 half precision (binary16) and bfloat16 on the CPU: the conversions `Engine.tensor` (upload
 * of an f16 / bf16 tensor) and `Engine.read` (read-back) use. Node 20 has no Float16Array.
 *
 * binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits; largest finite 65504, smallest
 * normal 2⁻¹⁴, smallest subnormal 2⁻²⁴. bfloat16: the upper 16 bits of an f32 (8 exponent bits, 7
 * fraction bits): f32's range, 3 significant decimal digits.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The half nearest to `x` (ties to even), as its 16 bits; beyond the finite range ±Inf, NaN stays NaN. */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const frac = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (frac ? 0x200 : 0);
  // Unbiased exponent of the f32, rebiased for half.
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): the 24-bit significand shifted right by 14 − e − 1 + 10.
    if (e < -10) return sign;
    const m = frac | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (frac >>> 13);
  const rest = frac & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is right (up to Inf)
  return sign | h;
}

/** The value of a half given by its 16 bits. */
export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}



/** The bfloat16 nearest to `x` (ties to even), as its 16 bits; NaN stays a (quiet) NaN. */
export function floatToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The value of a bfloat16 given by its 16 bits. */
export function bf16BitsToFloat(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** The 16-bit patterns of `data` in `dtype` packed for an upload (even length). */
export function toHalfBits(data: ArrayLike<number>, dtype: 'f16' | 'bf16'): Uint16Array {
  const conv = dtype === 'f16' ? floatToHalfBits : floatToBf16Bits;
  const out = new Uint16Array(data.length + (data.length & 1));
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]!);
  return out;
}

/** The values of `n` elements of `dtype` stored in `bytes`. */
export function fromHalfBits(bytes: ArrayBuffer, n: number, dtype: 'f16' | 'bf16'): Float32Array {
  const h = new Uint16Array(bytes, 0, n);
  const conv = dtype === 'f16' ? halfBitsToFloat : bf16BitsToFloat;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = conv(h[i]!);
  return out;
}
