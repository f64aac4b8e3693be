/**
 * Engine: the device plus everything that records and runs work on it.
 *
 * - `dispatch(spec, bindings, uniforms, grid)` encodes one kernel into the current command encoder.
 *   Nothing is submitted until `flush()` (or a readback, which flushes): a training step is recorded
 *   whole and submitted once.
 * - Uniforms go to a ring of 64 KiB uniform chunks with dynamic offsets, written with one
 *   `writeBuffer` per chunk at submit time; bind groups are cached per (pipeline, buffers, ranges).
 * - Tensors made by ops come from the BufferPool; `tidy(fn)` releases those not returned or kept.
 * - The autograd tape lives here too (see autograd.ts for backward).
 * - With `profile` on and timestamp-query present, each dispatch gets its own pass with timestamps.
 */
import type { KernelSpec } from '../kernels/spec.ts';
import { Device, type DeviceOptions } from './device.ts';
import { BufferPool, type Storage, STORAGE_USAGE } from './memory.ts';
import { PipelineCache } from './pipelines.ts';
import type { Precision } from './precision.ts';
import { Profiler } from './profiler.ts';
import { fromHalfBits, toHalfBits } from './half.ts';
import { Tensor, type AnyTypedArray, type DType, bytesPerElement, gradTarget, isHalfType, numelOf, storageBytes } from './tensor.ts';
import type { KernelPlan } from './plan.ts';
import { gpuWait, spinOnHardware } from './wait.ts';

/**
 * An rgba32float texture bound for `textureLoad` (kernels declare it with `tex()` in kernels/spec.ts).
 * Made and cached by `Engine.texture`; filled with `Engine.copyToTexture`.
 */
export interface TextureBinding {
  readonly texture: GPUTexture;
  readonly view: GPUTextureView;
  /** Width and height in texels (one texel = 4 floats). */
  readonly width: number;
  readonly height: number;
  readonly id: number;
}

export type Bindable = Tensor | Storage | TextureBinding;

function isTexture(b: Bindable): b is TextureBinding {
  return (b as TextureBinding).view !== undefined && (b as TextureBinding).texture !== undefined;
}

export interface DispatchCost {
  /** Floating-point operations (multiply-add = 2). */
  flops?: number;
  /** Bytes read + written from device memory (at least once each). */
  bytes?: number;
}

/** One recorded op on the tape. */
export interface TapeNode {
  name: string;
  inputs: Tensor[];
  outputs: Tensor[];
  /**
   * Given the gradients of the outputs (null where no gradient flowed), return one gradient
   * contribution per input (null for inputs that need none). Runs with the tape off.
   */
  backward: (gradOutputs: (Tensor | null)[]) => (Tensor | null)[];
}

const UNIFORM_CHUNK = 65536;

export class Engine {
  readonly pipelines: PipelineCache;
  readonly pool: BufferPool;
  readonly profiler: Profiler;

  /** Recorded-but-not-submitted work. */
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  /** Buffers referenced by the recorded-but-not-submitted work (uploads into them must flush first). */
  private pendingBuffers = new Set<GPUBuffer>();

  private uniformChunks: { buffer: GPUBuffer; cpu: ArrayBuffer; u32: Uint32Array; f32: Float32Array; i32: Int32Array }[] = [];
  private uniformChunk = 0;
  private uniformCursor = 0;
  private readonly uniformAlign: number;

  private bindGroups = new Map<string, GPUBindGroup>();
  private textures = new Map<string, TextureBinding>();
  private nextTextureId = 1;
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;

  /** Tensors allocated from the pool in each open tidy scope. */
  private scopes: Set<Tensor>[] = [];

  /** The autograd tape; null when gradients are not being recorded. */
  tape: TapeNode[] | null = null;
  private noGradDepth = 0;

  /**
   * Storage precision of the matmul operands in `linear` and `matmul` (engine/precision.ts,
   * `setPrecision`): 'f32', or 'f16' / 'bf16' (operands cast to half, products accumulated in f32).
   */
  precision: Precision = 'f32';
  /** With a half precision: the overflow flags the half casts set ([gradient, activation], u32). */
  halfFlags: Storage | null = null;

  /** Counters for the benchmarks. */
  readonly counters = { dispatches: 0, submits: 0, bindGroupsCreated: 0, uploads: 0, readbacks: 0 };

  private constructor(readonly device: Device) {
    this.pipelines = new PipelineCache(device);
    this.pool = new BufferPool(device);
    this.profiler = new Profiler(this);
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    // Waits follow the adapter, not the plan (KernelPlan.wait): a software adapter shares the cores.
    if (device.plan.wait.spin) spinOnHardware();
  }

  /** Every kernel choice of this engine's ops (engine/plan.ts; the device's plan). */
  get plan(): KernelPlan {
    return this.device.plan;
  }

  static async create(opts: DeviceOptions = {}): Promise<Engine> {
    return new Engine(await Device.create(opts));
  }

  /** An engine on an existing device (several engines may share one device). */
  static fromDevice(device: Device): Engine {
    return new Engine(device);
  }

  /** Begin recording the autograd tape (see autograd.ts). */
  startGrad(): void {
    this.tape = [];
  }

  get gpu(): GPUDevice {
    return this.device.gpu;
  }

  // ---------------------------------------------------------------- tensors

  /** An uninitialised tensor from the pool. */
  empty(shape: readonly number[], dtype: DType = 'f32', name?: string): Tensor {
    const bytes = storageBytes(numelOf(shape), dtype);
    const buffer = this.pool.acquire(bytes, name ?? 'activation');
    const t = new Tensor(this, shape, dtype, { buffer, offset: 0, byteLength: bytes }, 'pool', { name });
    this.scopes[this.scopes.length - 1]?.add(t);
    return t;
  }

  /** A tensor holding `data` (uploaded with queue.writeBuffer, ordered after recorded work). */
  tensor(data: AnyTypedArray | number[], shape?: readonly number[], opts: { dtype?: DType; name?: string; requiresGrad?: boolean } = {}): Tensor {
    const dtype: DType = opts.dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32');
    const arr = Array.isArray(data) ? (dtype === 'f32' || isHalfType(dtype) ? Float32Array.from(data) : dtype === 'i32' ? Int32Array.from(data) : Uint32Array.from(data)) : data;
    const s = shape ?? [arr.length];
    if (numelOf(s) !== arr.length) throw new Error(`tensor(): ${arr.length} values do not fill shape [${s.join(', ')}]`);
    const t = this.empty(s, dtype, opts.name);
    t.requiresGrad = opts.requiresGrad ?? false;
    // f16 / bf16: rounded to the nearest value of the type on the CPU (ties to even).
    this.write(t, isHalfType(dtype) ? toHalfBits(arr, dtype) : arr);
    return t;
  }

  /**
   * Overwrite a tensor's data from the CPU. `queue.writeBuffer` runs before the next submit, not at
   * its place in the encoder: if recorded work still uses this buffer, that work is submitted first;
   * otherwise (e.g. a fresh buffer for data made mid-step) the write needs no extra submit.
   */
  write(t: Bindable, data: AnyTypedArray | Uint16Array): void {
    const s = storageOf(t);
    if (data.byteLength > s.byteLength) throw new Error(`write(): ${data.byteLength} bytes do not fit in ${s.byteLength}`);
    if (this.pendingBuffers.has(s.buffer)) this.flush();
    this.gpu.queue.writeBuffer(s.buffer, s.offset, data.buffer, data.byteOffset, data.byteLength);
    this.counters.uploads++;
  }

  zeros(shape: readonly number[], dtype: DType = 'f32', name?: string): Tensor {
    const t = this.empty(shape, dtype, name);
    this.clear(t);
    return t;
  }

  /**
   * A view of `t` with another shape; gradient flows through it. When `t` has a preallocated gradient
   * (a parameter's arena slot), the view gets the same view of it, so ops that add into a gradient in
   * place (`gradTarget`) do so through the view too, instead of a fresh gradient handed back through
   * the reshape and added again (stacked models read their embedding tables through views).
   */
  view(t: Tensor, shape: readonly number[]): Tensor {
    const v = new Tensor(this, shape, t.dtype, t.storage, 'view', { name: `${t.name}.view` });
    v.base = t.base ?? t;
    if (this.recording([t])) {
      v.requiresGrad = true;
      this.record({ name: 'reshape', inputs: [t], outputs: [v], backward: ([g]) => [g ? this.view(g, t.shape) : null] });
      const g = gradTarget(t);
      if (g) v.grad = this.view(g, shape);
    }
    return v;
  }

  /**
   * Byte alignment of a `slice` start: the device's minStorageBufferOffsetAlignment (a storage
   * binding cannot start between two such multiples).
   */
  get sliceAlignment(): number {
    return this.device.limits.minStorageBufferOffsetAlignment;
  }

  /**
   * A view of numel(shape) elements of `t` from element `start` on, with `shape` (no copy; shares
   * storage and lifetime). No gradient flows through it: it is for ops that run their own backward on
   * parts of a tensor (segmented attention). `start` · (bytes per element) must be a multiple of `sliceAlignment`.
   */
  slice(t: Tensor, start: number, shape: readonly number[]): Tensor {
    const n = numelOf(shape);
    if (!Number.isInteger(start) || start < 0 || start + n > t.numel)
      throw new Error(`slice: elements ${start}..${start + n} are outside "${t.name}" (${t.numel} elements)`);
    const per = bytesPerElement(t.dtype);
    const offset = t.storage.offset + per * start;
    if (offset % this.sliceAlignment !== 0)
      throw new Error(`slice: byte offset ${offset} of "${t.name}" is not a multiple of the device's minStorageBufferOffsetAlignment ${this.sliceAlignment}`);
    const v = new Tensor(this, shape, t.dtype, { buffer: t.storage.buffer, offset, byteLength: storageBytes(n, t.dtype) }, 'view', { name: `${t.name}.slice` });
    v.base = t.base ?? t;
    return v;
  }

  dispose(t: Tensor): void {
    if (t.ownership !== 'pool' || !t.alive) return;
    t.alive = false;
    this.pool.release(t.storage.buffer);
    for (const s of this.scopes) s.delete(t);
  }

  /**
   * Run `fn`; afterwards release every pool tensor it allocated except those reachable from its
   * result (tensors, arrays or plain objects of them) or marked `keep()`. Gradients of kept tensors
   * are kept too.
   */
  tidy<T>(fn: () => T): T {
    const scope = new Set<Tensor>();
    this.scopes.push(scope);
    let result: T;
    try {
      result = fn();
    } finally {
      this.scopes.pop();
    }
    const keep = new Set<Tensor>();
    collectTensors(result, keep);
    for (const t of scope) {
      if (t.kept) keep.add(t);
    }
    for (const t of [...keep]) if (t.grad) keep.add(t.grad);
    for (const t of [...keep]) if (t.base) keep.add(t.base);
    const parent = this.scopes[this.scopes.length - 1];
    for (const t of scope) {
      if (keep.has(t)) {
        t.kept = false;
        parent?.add(t);
      } else this.dispose(t);
    }
    return result;
  }

  // ---------------------------------------------------------------- autograd tape

  /** Whether an op on these inputs should be recorded for backward. */
  recording(inputs: Tensor[]): boolean {
    return this.tape !== null && this.noGradDepth === 0 && inputs.some((t) => t.requiresGrad);
  }

  record(node: TapeNode): void {
    if (this.tape && this.noGradDepth === 0) {
      for (const o of node.outputs) o.requiresGrad = true;
      this.tape.push(node);
    }
  }

  /** Run `fn` without recording ops on the tape. */
  noGrad<T>(fn: () => T): T {
    this.noGradDepth++;
    try {
      return fn();
    } finally {
      this.noGradDepth--;
    }
  }

  // ---------------------------------------------------------------- recording & submission

  private ensurePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder({ label: 'kindling step' });
    if (!this.pass) this.pass = this.encoder.beginComputePass({ label: 'kindling' });
    return this.pass;
  }

  private endPass(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder({ label: 'kindling step' });
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return this.encoder;
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  private uniformSlot(bytes: number): { chunk: number; offset: number } {
    let off = Math.ceil(this.uniformCursor / this.uniformAlign) * this.uniformAlign;
    if (off + bytes > UNIFORM_CHUNK) {
      this.uniformChunk++;
      off = 0;
    }
    while (this.uniformChunks.length <= this.uniformChunk) {
      const cpu = new ArrayBuffer(UNIFORM_CHUNK);
      const buffer = this.device.createBuffer(`uniforms[${this.uniformChunks.length}]`, UNIFORM_CHUNK, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.uniformChunks.push({ buffer, cpu, u32: new Uint32Array(cpu), f32: new Float32Array(cpu), i32: new Int32Array(cpu) });
    }
    this.uniformCursor = off + bytes;
    return { chunk: this.uniformChunk, offset: off };
  }

  /**
   * Encode one dispatch of `spec`. `bindings` follow spec.bindings in order; `uniforms` gives a
   * value for every declared uniform field; `grid` is the number of workgroups (x, y, z).
   */
  dispatch(spec: KernelSpec, bindings: Bindable[], uniforms: Record<string, number>, grid: readonly number[], cost: DispatchCost = {}): void {
    if (bindings.length !== spec.bindings.length)
      throw new Error(`kernel "${spec.name}": ${bindings.length} bindings given, ${spec.bindings.length} declared`);
    const [gx = 1, gy = 1, gz = 1] = grid;
    const maxG = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (gx > maxG || gy > maxG || gz > maxG) throw new Error(`kernel "${spec.name}": grid [${gx}, ${gy}, ${gz}] exceeds ${maxG} workgroups per dimension`);
    if (gx === 0 || gy === 0 || gz === 0) return;
    const k = this.pipelines.get(spec);

    // uniforms
    const slot = this.uniformSlot(k.uniformBytes);
    const ch = this.uniformChunks[slot.chunk]!;
    const base = slot.offset / 4;
    spec.uniforms.forEach(([name, type], i) => {
      const v = uniforms[name];
      if (v === undefined || Number.isNaN(v)) throw new Error(`kernel "${spec.name}": uniform "${name}" missing or NaN`);
      if (type === 'f32') ch.f32[base + i] = v;
      else if (type === 'i32') ch.i32[base + i] = v;
      else ch.u32[base + i] = v;
    });

    // bind group (cached)
    const maxBind = this.device.limits.maxStorageBufferBindingSize;
    let key = `${k.id}`;
    const ranges: ({ buffer: GPUBuffer; offset: number; size: number } | GPUTextureView)[] = [];
    for (let i = 0; i < bindings.length; i++) {
      const bi = bindings[i]!;
      if ((spec.bindings[i]!.access === 'texture') !== isTexture(bi))
        throw new Error(`kernel "${spec.name}": binding ${spec.bindings[i]!.name} needs ${spec.bindings[i]!.access === 'texture' ? 'a texture' : 'a buffer'}`);
      if (isTexture(bi)) {
        ranges.push(bi.view);
        key += `|t${bi.id}`;
        continue;
      }
      const s = storageOf(bi);
      if (bindings[i] instanceof Tensor && !(bindings[i] as Tensor).isAlive)
        throw new Error(`kernel "${spec.name}": binding ${spec.bindings[i]!.name} uses disposed tensor "${(bindings[i] as Tensor).name}"`);
      const size = Math.min(Math.ceil(Math.max(4, s.byteLength) / 16) * 16, s.buffer.size - s.offset);
      if (size > maxBind)
        throw new Error(`kernel "${spec.name}": binding ${spec.bindings[i]!.name} is ${size} bytes, over maxStorageBufferBindingSize ${maxBind}`);
      ranges.push({ buffer: s.buffer, offset: s.offset, size });
      this.pendingBuffers.add(s.buffer);
      key += `|${this.bufferId(s.buffer)}:${s.offset}:${size}`;
    }
    key += `|u${slot.chunk}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      const entries: GPUBindGroupEntry[] = ranges.map((r, i) => ({ binding: i, resource: r }));
      entries.push({ binding: ranges.length, resource: { buffer: ch.buffer, offset: 0, size: k.uniformBytes } });
      bg = this.gpu.createBindGroup({ label: spec.name, layout: k.layout, entries });
      if (this.bindGroups.size > 20000) this.bindGroups.clear();
      this.bindGroups.set(key, bg);
      this.counters.bindGroupsCreated++;
    }

    const profiled = this.profiler.active;
    if (profiled) this.endPass();
    const pass = profiled
      ? this.encoder!.beginComputePass({ label: spec.name, timestampWrites: this.profiler.timestampWrites(spec.name, cost) })
      : this.ensurePass();
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, bg, [slot.offset]);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (profiled) pass.end();
    else this.profiler.note(spec.name, cost);
    this.pendingDispatches++;
    this.counters.dispatches++;
  }

  /**
   * An rgba32float texture of `width` texels and at least `height` rows for `slot` (created on first
   * use, then reused: recorded work runs in order, so a later copy into it waits for the kernels that
   * read it before). One texture per (width, slot), grown to the next power of two of rows when a
   * taller one is asked for: the operands of a sparse batch change shape every step (buckets), and
   * a texture per exact shape, kept for the engine's life, filled 12 GB of lavapipe's memory in an
   * hour of needle training. Kernels read only the rows a copy wrote (their sizes travel in uniforms).
   */
  texture(width: number, height: number, slot = 0): TextureBinding {
    const key = `${width}${slot ? `#${slot}` : ''}`;
    let t = this.textures.get(key);
    if (!t || t.height < height) {
      const max = this.device.limits.maxTextureDimension2D;
      if (width > max || height > max) throw new Error(`texture ${width}×${height} exceeds maxTextureDimension2D ${max}`);
      const rows = Math.min(max, 2 ** Math.ceil(Math.log2(Math.max(1, height))));
      const texture = this.gpu.createTexture({
        label: `texture ${width}x${rows}${slot ? `#${slot}` : ''}`,
        size: [width, rows],
        format: 'rgba32float',
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
      });
      // The smaller texture it replaces may still be read by recorded work: it is dropped, not destroyed.
      t = { texture, view: texture.createView(), width, height: rows, id: this.nextTextureId++ };
      this.textures.set(key, t);
    }
    return t;
  }

  /**
   * Copy `rows` rows of `t.width` texels (16 bytes each) from `src` into the top of texture `t`,
   * ordered with recorded dispatches. The row pitch (width·16 bytes) must be a multiple of 256 and
   * the source offset of 16.
   */
  copyToTexture(src: Tensor | Storage, t: TextureBinding, rows: number): void {
    const s = storageOf(src);
    const pitch = t.width * 16;
    if (pitch % 256 !== 0 || s.offset % 16 !== 0) throw new Error(`copyToTexture: row pitch ${pitch} must be a multiple of 256 and offset ${s.offset} of 16`);
    if (rows > t.height || rows * pitch > s.byteLength) throw new Error(`copyToTexture: ${rows} rows do not fit the texture or the source`);
    this.endPass().copyBufferToTexture({ buffer: s.buffer, offset: s.offset, bytesPerRow: pitch }, { texture: t.texture }, [t.width, rows]);
    this.pendingBuffers.add(s.buffer);
    this.pendingDispatches++;
  }

  /** Zero a tensor or storage region (a clear command, outside compute passes). */
  clear(t: Bindable): void {
    const s = storageOf(t);
    const size = Math.ceil(s.byteLength / 4) * 4;
    this.endPass().clearBuffer(s.buffer, s.offset, size);
    this.pendingBuffers.add(s.buffer);
    this.pendingDispatches++;
  }

  /** Copy bytes between buffers, ordered with recorded dispatches. */
  copy(src: Bindable, dst: Bindable, bytes?: number): void {
    const a = storageOf(src);
    const b = storageOf(dst);
    const n = bytes ?? Math.min(a.byteLength, b.byteLength);
    this.endPass().copyBufferToBuffer(a.buffer, a.offset, b.buffer, b.offset, Math.ceil(n / 4) * 4);
    this.pendingBuffers.add(a.buffer);
    this.pendingBuffers.add(b.buffer);
    this.pendingDispatches++;
  }

  /** Whether recorded work is waiting for `flush()`. */
  get hasPendingWork(): boolean {
    return this.pendingDispatches > 0;
  }

  /** Submit everything recorded so far as one command buffer. */
  flush(): void {
    if (!this.encoder) return;
    const enc = this.endPass();
    this.profiler.beforeSubmit(enc);
    for (let c = 0; c <= this.uniformChunk && c < this.uniformChunks.length; c++) {
      const ch = this.uniformChunks[c]!;
      const used = c < this.uniformChunk ? UNIFORM_CHUNK : Math.ceil(this.uniformCursor / 4) * 4;
      if (used > 0) this.gpu.queue.writeBuffer(ch.buffer, 0, ch.cpu, 0, used);
    }
    this.gpu.queue.submit([enc.finish()]);
    this.profiler.afterSubmit();
    this.encoder = null;
    this.pendingDispatches = 0;
    this.pendingBuffers.clear();
    this.uniformChunk = 0;
    this.uniformCursor = 0;
    this.counters.submits++;
  }

  /** Submit and wait for the device; surfaces compile, validation and device-loss errors. */
  async sync(): Promise<void> {
    this.flush();
    await this.pipelines.flushErrors();
    await this.device.sync();
  }

  /** Read a tensor (or storage) back to the CPU (f16 / bf16: as a Float32Array of their values). */
  async read(t: Tensor): Promise<AnyTypedArray> {
    const bytes = storageBytes(t.numel, t.dtype);
    const staging = this.device.createBuffer(`readback ${t.name}`, bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    if (t.numel > 0) this.copy(t, { buffer: staging, offset: 0, byteLength: bytes }, bytes);
    this.flush();
    await this.pipelines.flushErrors();
    try {
      await gpuWait(staging.mapAsync(GPUMapMode.READ));
    } catch (e) {
      this.device.check();
      throw e;
    }
    this.device.check();
    const src = staging.getMappedRange(0, bytes).slice(0, t.byteLength);
    staging.unmap();
    staging.destroy();
    this.counters.readbacks++;
    if (isHalfType(t.dtype)) return fromHalfBits(src, t.numel, t.dtype);
    return t.dtype === 'f32' ? new Float32Array(src) : t.dtype === 'i32' ? new Int32Array(src) : new Uint32Array(src);
  }

  /** A buffer outside the pool (caller owns it). */
  createStorage(label: string, bytes: number): Storage {
    return { buffer: this.device.createBuffer(label, bytes, STORAGE_USAGE), offset: 0, byteLength: bytes };
  }

  destroy(): void {
    this.device.destroy();
  }
}

export function storageOf(b: Bindable): Storage {
  if (isTexture(b)) throw new Error('a texture binding is not a buffer region');
  return b instanceof Tensor ? b.storage : b;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collectTensors(x, out, depth + 1);
  else if (v.constructor === Object || v instanceof Map) for (const x of v instanceof Map ? v.values() : Object.values(v)) collectTensors(x, out, depth + 1);
}
