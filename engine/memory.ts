/**
 * Device memory: a size-class buffer pool for activations and temporaries, and flat arenas for
 * parameters, gradients and optimizer moments.
 *
 * Pool: buffers are never freed to the garbage collector; a released buffer goes back to its size
 * class and the next request of that class gets it (LIFO). A fixed-shape step therefore gets the
 * same buffers every time after the first, allocates nothing in steady state, and hits the bind-group
 * cache. `stats()` reports bytes allocated vs in use.
 *
 * Arenas: one `ArenaLayout` assigns every tensor an offset (aligned to the device's
 * minStorageBufferOffsetAlignment) inside a chunk no larger than maxStorageBufferBindingSize; several
 * `Arena`s (params, grads, Adam m, Adam v) share that layout, so one kernel can walk all four with the
 * same index, and zeroing the gradients is one clear per chunk.
 */
import { Device, fmtBytes } from './device.ts';

export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A region of a GPU buffer holding one tensor's data. */
export interface Storage {
  buffer: GPUBuffer;
  /** Byte offset inside `buffer`, aligned to minStorageBufferOffsetAlignment. */
  offset: number;
  /** Bytes of tensor data. */
  byteLength: number;
}

/** Size classes: multiples of 256 B up to 4 KiB, then 8 classes per power of two. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, bytes);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

export interface PoolStats {
  /** Bytes of all buffers the pool has created. */
  allocatedBytes: number;
  /** Bytes currently handed out. */
  inUseBytes: number;
  peakInUseBytes: number;
  buffersCreated: number;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private sizeOf = new WeakMap<GPUBuffer, number>();
  private s: PoolStats = { allocatedBytes: 0, inUseBytes: 0, peakInUseBytes: 0, buffersCreated: 0 };

  constructor(private readonly device: Device) {}

  acquire(bytes: number, label = 'pool'): GPUBuffer {
    const cls = sizeClass(bytes);
    const list = this.free.get(cls);
    let buf = list?.pop();
    if (!buf) {
      buf = this.device.createBuffer(`${label} (${fmtBytes(cls)})`, cls, STORAGE_USAGE);
      this.sizeOf.set(buf, cls);
      this.s.allocatedBytes += cls;
      this.s.buffersCreated++;
    }
    this.s.inUseBytes += cls;
    this.s.peakInUseBytes = Math.max(this.s.peakInUseBytes, this.s.inUseBytes);
    return buf;
  }

  release(buf: GPUBuffer): void {
    const cls = this.sizeOf.get(buf);
    if (cls === undefined) throw new Error('BufferPool.release: buffer does not belong to this pool');
    this.s.inUseBytes -= cls;
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(buf);
  }

  stats(): PoolStats {
    return { ...this.s };
  }

  resetPeak(): void {
    this.s.peakInUseBytes = this.s.inUseBytes;
  }

  /** Destroys every free buffer (those in use stay). */
  trim(): void {
    for (const [cls, list] of this.free) {
      for (const b of list) {
        b.destroy();
        this.s.allocatedBytes -= cls;
      }
    }
    this.free.clear();
  }
}

export interface ArenaSlot {
  name: string;
  numel: number;
  chunk: number;
  /** Byte offset inside the chunk. */
  offset: number;
}

/**
 * Offsets for a set of f32 tensors packed into chunks. Gaps between tensors (alignment padding) are
 * zero in every arena and stay zero under AdamW (zero grad, zero param).
 */
export class ArenaLayout {
  readonly slots: ArenaSlot[] = [];
  /** Bytes used in each chunk. */
  readonly chunkBytes: number[] = [];
  private sealed = false;

  constructor(
    readonly align: number,
    readonly maxChunkBytes: number,
  ) {}

  add(name: string, numel: number): ArenaSlot {
    if (this.sealed) throw new Error(`ArenaLayout: cannot add "${name}" after the arenas were allocated`);
    const bytes = numel * 4;
    if (bytes > this.maxChunkBytes)
      throw new Error(`tensor "${name}" (${fmtBytes(bytes)}) exceeds the binding size limit ${fmtBytes(this.maxChunkBytes)}`);
    let c = this.chunkBytes.length - 1;
    let off = c >= 0 ? Math.ceil(this.chunkBytes[c]! / this.align) * this.align : 0;
    if (c < 0 || off + bytes > this.maxChunkBytes) {
      this.chunkBytes.push(0);
      c++;
      off = 0;
    }
    this.chunkBytes[c] = off + bytes;
    const slot = { name, numel, chunk: c, offset: off };
    this.slots.push(slot);
    return slot;
  }

  seal(): void {
    this.sealed = true;
  }

  get totalBytes(): number {
    return this.chunkBytes.reduce((a, b) => a + b, 0);
  }

  /** Elements in chunk c including padding (a multiple of 4, for vec4 kernels). */
  chunkElements(c: number): number {
    return Math.ceil(this.chunkBytes[c]! / 16) * 4;
  }
}

/** One set of GPU buffers following an ArenaLayout (e.g. the parameters, or Adam's m). */
export class Arena {
  readonly buffers: GPUBuffer[];

  constructor(
    readonly device: Device,
    readonly layout: ArenaLayout,
    readonly label: string,
  ) {
    layout.seal();
    this.buffers = layout.chunkBytes.map((_, c) => device.createBuffer(`${label}[${c}]`, layout.chunkElements(c) * 4, STORAGE_USAGE));
  }

  storage(slot: ArenaSlot): Storage {
    return { buffer: this.buffers[slot.chunk]!, offset: slot.offset, byteLength: slot.numel * 4 };
  }

  get bytes(): number {
    return this.buffers.reduce((a, b) => a + b.size, 0);
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}
