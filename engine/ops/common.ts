/** Helpers shared by the op modules: dispatch grids, shape checks, vec4 eligibility, operand textures. */
import type { Bindable, Engine, TextureBinding } from '../engine.ts';
import { storageOf } from '../engine.ts';
import type { Tensor } from '../tensor.ts';

/** Workgroup grid covering `n` invocations of a 1D kernel with workgroup size `wg`, x ≤ 65535. */
export function grid1d(n: number, wg: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

/** True when every binding can be read as vec4<f32>: n % 4 == 0 and 16-byte aligned offsets. */
export function vec4able(n: number, ...bs: Bindable[]): boolean {
  return n % 4 === 0 && bs.every((b) => storageOf(b).offset % 16 === 0);
}

export function sameShape(a: Tensor, b: Tensor, op: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    throw new Error(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
}

export function expectDtype(t: Tensor, dtype: string, op: string): void {
  if (t.dtype !== dtype) throw new Error(`${op}: tensor "${t.name}" has dtype ${t.dtype}, expected ${dtype}`);
}

export function engineOf(...ts: Tensor[]): Engine {
  const e = ts[0]!.engine;
  for (const t of ts) if (t.engine !== e) throw new Error('tensors belong to different engines');
  return e;
}

export { gradTarget } from '../tensor.ts';

/**
 * Whether ops read big operands through textures on this engine: on the software plan (lavapipe's
 * texel fetch clamps coordinates with SIMD instructions; its storage loads branch per lane), unless
 * KINDLING_MATMUL_TEXTURE=0 (`plan.matmul.textures`, engine/plan.ts). The operand is copied into a cached texture first (its cost: docs/performance.md):
 * matmul A [M, K], B [K, N] or Bᵀ [N, K]; attention's qkv [B·T, 3d].
 */
export function useTextures(engine: Engine): boolean {
  return engine.plan.matmul.textures;
}

/**
 * Texture slots of `Engine.texture` (one cached texture per size and slot): operands read by one
 * dispatch take different slots. A later copy into the same texture is ordered after the dispatches
 * recorded before it, so one texture per slot serves a whole step.
 */
export const TEX_SLOT = { matmulB: 0, matmulA: 1, qkv: 2 } as const;

/**
 * Whether a row-major operand of `rowsPer` × `cols` floats per batch entry (batches dense or
 * broadcast: stride rowsPer·cols or 0; `rows` texture rows in all) can go through an rgba32float
 * texture of cols/4 × rows texels: a row pitch that is a multiple of 256 bytes, the size limit, a
 * 16-byte aligned source holding every row.
 */
export function textureFits(engine: Engine, x: Bindable, cols: number, rowsPer: number, stride: number, rows: number): boolean {
  const max = engine.device.limits.maxTextureDimension2D;
  if (!(cols % 64 === 0 && (stride === 0 || stride === rowsPer * cols) && rows <= max && cols / 4 <= max && rows > 0)) return false;
  const s = storageOf(x);
  return s.offset % 16 === 0 && rows * cols * 4 <= s.byteLength;
}

/** Copy `rows` rows of `cols` floats of x (row-major) into the cached texture of its size in `slot`. */
export function toTexture(engine: Engine, x: Bindable, cols: number, rows: number, slot: number): TextureBinding {
  const t = engine.texture(cols / 4, rows, slot);
  engine.copyToTexture(x as Exclude<Bindable, TextureBinding>, t, rows);
  return t;
}
