/**
 * Tensor: a shape, a dtype and a region of a GPU buffer. Row-major, contiguous.
 * Created by `Engine` (upload, zeros, empty) and by ops; read back with `await t.read()`.
 */
import type { Engine } from './engine.ts';
import type { Storage } from './memory.ts';

/**
 * Element types. `f16` (IEEE half) and `bf16` (bfloat16: the upper 16 bits of an f32), 2 bytes each,
 * are storage types of the mixed-precision path (engine/precision.ts): kernels that read f16 need the
 * adapter feature `shader-f16`; bf16 is read as packed u32 words (element 2i in the low half of word
 * i) on any adapter. Both read back to the CPU as a Float32Array.
 */
export type DType = 'f32' | 'i32' | 'u32' | 'f16' | 'bf16';
export type TypedArrayFor<D extends DType> = D extends 'f32' | 'f16' | 'bf16' ? Float32Array : D extends 'i32' ? Int32Array : Uint32Array;

/** The 2-byte float storage types. */
export type HalfType = 'f16' | 'bf16';

export function isHalfType(dtype: DType): dtype is HalfType {
  return dtype === 'f16' || dtype === 'bf16';
}

/** Bytes per element of a dtype. */
export function bytesPerElement(dtype: DType): number {
  return isHalfType(dtype) ? 2 : 4;
}

/** Bytes a buffer for `numel` elements of `dtype` takes: a multiple of 4 (copies and writes move whole words), at least 4. */
export function storageBytes(numel: number, dtype: DType): number {
  return Math.max(4, Math.ceil((numel * bytesPerElement(dtype)) / 4) * 4);
}
export type AnyTypedArray = Float32Array | Int32Array | Uint32Array;

/** Where the tensor's buffer comes from and who frees it. */
export type Ownership = 'pool' | 'arena' | 'view';

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

let nextTensorId = 1;

export class Tensor {
  readonly id = nextTensorId++;
  readonly numel: number;
  /** Gradient, set by backward (or an arena view for parameters). */
  grad: Tensor | null = null;
  /** Whether backward computes a gradient for this tensor. */
  requiresGrad: boolean;
  /** Name shown in errors, checkpoints and the profiler. */
  name: string;
  /** False once the storage went back to the pool. */
  alive = true;
  /** Kept past the end of the current `engine.tidy` scope. */
  kept = false;
  /** For views: the tensor that owns the storage. */
  base: Tensor | null = null;

  constructor(
    readonly engine: Engine,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly storage: Storage,
    readonly ownership: Ownership,
    opts: { requiresGrad?: boolean; name?: string } = {},
  ) {
    this.numel = numelOf(shape);
    this.requiresGrad = opts.requiresGrad ?? false;
    this.name = opts.name ?? `t${this.id}`;
    if (this.numel * bytesPerElement(dtype) > storage.byteLength) throw new Error(`tensor "${this.name}": storage too small for shape [${shape.join(', ')}]`);
  }

  /** False once the storage (of this tensor or the one it views) went back to the pool. */
  get isAlive(): boolean {
    return this.alive && (this.base?.alive ?? true);
  }

  get byteLength(): number {
    return this.numel * bytesPerElement(this.dtype);
  }

  /** Size of dimension d (negative counts from the end). */
  dim(d: number): number {
    const i = d < 0 ? this.shape.length + d : d;
    const v = this.shape[i];
    if (v === undefined) throw new Error(`tensor "${this.name}" of shape [${this.shape.join(', ')}] has no dimension ${d}`);
    return v;
  }

  /** Copy the data back to the CPU (flushes recorded work first). */
  read(): Promise<AnyTypedArray> {
    return this.engine.read(this);
  }

  async readFloat32(): Promise<Float32Array> {
    const d = await this.read();
    return d instanceof Float32Array ? d : Float32Array.from(d);
  }

  /** The same data with another shape (no copy); shares storage and lifetime. */
  reshape(shape: readonly number[]): Tensor {
    const resolved = [...shape];
    const neg = resolved.indexOf(-1);
    if (neg >= 0) resolved[neg] = this.numel / numelOf(resolved.filter((_, i) => i !== neg));
    if (numelOf(resolved) !== this.numel) throw new Error(`cannot reshape [${this.shape.join(', ')}] to [${shape.join(', ')}]`);
    return this.engine.view(this, resolved);
  }

  /** Return the storage to the pool (pool tensors only; views and arena tensors are no-ops). */
  dispose(): void {
    this.engine.dispose(this);
  }

  /** Keep this tensor alive past the end of the enclosing `tidy` scope. */
  keep(): this {
    this.kept = true;
    return this;
  }

  toString(): string {
    return `Tensor(${this.name}, [${this.shape.join(', ')}], ${this.dtype})`;
  }
}

/**
 * The gradient of `t` when backward can add into it directly: `t` wants a gradient and already has
 * a live f32 one (a parameter with its slot in the gradient arena, or a leaf that received a
 * gradient earlier in this backward). Ops then write with accumulate and return null to autograd.
 */
export function gradTarget(t: Tensor): Tensor | null {
  const g = t.grad;
  return t.requiresGrad && g !== null && g.isAlive && g.numel === t.numel && g.dtype === 'f32' ? g : null;
}
