/**
 * ParameterStore: every parameter of a model in one ArenaLayout, with four arenas sharing it —
 * parameters, gradients, Adam's first moment m and second moment v — plus a flags buffer per chunk
 * (decay and trainable bits per element) for the optimizer.
 *
 *   const store = ParameterStore.create(engine, [
 *     { name: 'wte.weight', shape: [50257, 768], init },
 *     { name: 'ln_f.bias', shape: [768], decay: false },
 *   ]);
 *   store.get('wte.weight')        // Tensor over the params arena; .grad over the grads arena
 *   store.zeroGrad()               // one clear per chunk, recorded
 *   store.setTrainable(/^h\.0\./, false)   // freeze: no gradient, no update
 *
 * Each parameter is a Tensor with ownership 'arena'; a trainable one has requiresGrad = true and a
 * `.grad` Tensor over its slot in the gradient arena, into which autograd adds contributions in place
 * (so micro-batch accumulation is free). A frozen one has requiresGrad = false, `.grad` = null, and
 * its gradient slot is kept zero (so the global gradient norm ignores it).
 *
 * Offsets are aligned to max(16, minStorageBufferOffsetAlignment) so every tensor starts on a vec4;
 * chunks are at most maxStorageBufferBindingSize (rounded down to 16 bytes, so a chunk's vec4 view
 * fits). Padding between tensors is zero in every arena and has flags 0, so the optimizer never
 * writes it.
 */
import { FLAG_BITS, FLAG_DECAY, FLAG_TRAINABLE, FLAGS_PER_WORD } from '../kernels/adamw.ts';
import { fmtBytes } from './device.ts';
import type { Engine } from './engine.ts';
import { Arena, ArenaLayout, type ArenaSlot, type Storage } from './memory.ts';
import { Tensor, numelOf } from './tensor.ts';

export interface ParamDecl {
  name: string;
  shape: readonly number[];
  /** Initial values (row-major, numel long); zeros when absent. */
  init?: Float32Array;
  /** Whether AdamW applies weight decay to it (default true). */
  decay?: boolean;
  /** Whether it gets a gradient and updates (default true). */
  trainable?: boolean;
}

export interface ParameterStoreOptions {
  /** Largest chunk in bytes (default: the device's maxStorageBufferBindingSize). Tests force several chunks with a small one. */
  maxChunkBytes?: number;
  /** Offset alignment in bytes (default: the device's minStorageBufferOffsetAlignment, at least 16). */
  align?: number;
  /** Label prefix for the buffers. */
  label?: string;
}

/** Adam moments by parameter name (checkpoints; independent of the chunk layout). */
export interface OptimizerMoments {
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

interface Entry {
  name: string;
  shape: readonly number[];
  slot: ArenaSlot;
  decay: boolean;
  trainable: boolean;
  param: Tensor;
  /** The gradient view (kept while frozen; `param.grad` is null then). */
  grad: Tensor;
}

export class ParameterStore {
  readonly layout: ArenaLayout;
  readonly params: Arena;
  readonly grads: Arena;
  readonly m: Arena;
  readonly v: Arena;
  /** Per chunk: 2 flag bits per element (bit 0 decay, bit 1 trainable), 16 elements per u32. */
  readonly flags: Storage[];
  /** Total number of parameter elements (padding excluded). */
  readonly numel: number;
  private readonly byName = new Map<string, Entry>();
  private readonly order: Entry[] = [];

  private constructor(
    readonly engine: Engine,
    decls: readonly ParamDecl[],
    opts: ParameterStoreOptions,
  ) {
    const lim = engine.device.limits;
    const align = opts.align ?? Math.max(16, lim.minStorageBufferOffsetAlignment);
    if (!Number.isInteger(align) || align < 16 || align % 16 !== 0) throw new Error(`ParameterStore: align ${align} must be a positive multiple of 16`);
    const deviceMax = Math.floor(Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize) / align) * align;
    const maxChunk = Math.floor(Math.min(opts.maxChunkBytes ?? deviceMax, deviceMax) / 16) * 16;
    if (maxChunk < 16) throw new Error(`ParameterStore: maxChunkBytes ${opts.maxChunkBytes} is too small`);
    this.layout = new ArenaLayout(align, maxChunk);

    let total = 0;
    const slots: ArenaSlot[] = [];
    const seen = new Set<string>();
    for (const d of decls) {
      if (seen.has(d.name)) throw new Error(`ParameterStore: parameter "${d.name}" declared twice`);
      seen.add(d.name);
      let numel: number;
      try {
        numel = numelOf(d.shape);
      } catch {
        throw new Error(`ParameterStore: parameter "${d.name}" has an invalid shape [${d.shape.join(', ')}]`);
      }
      if (d.init && d.init.length !== numel)
        throw new Error(`ParameterStore: init of "${d.name}" has ${d.init.length} values, shape [${d.shape.join(', ')}] needs ${numel}`);
      slots.push(this.layout.add(d.name, numel));
      total += numel;
    }
    this.numel = total;

    const label = opts.label ?? 'params';
    this.params = new Arena(engine.device, this.layout, label);
    this.grads = new Arena(engine.device, this.layout, `${label}.grad`);
    this.m = new Arena(engine.device, this.layout, `${label}.adam_m`);
    this.v = new Arena(engine.device, this.layout, `${label}.adam_v`);
    // New WebGPU buffers are zero-filled: padding, gradients and moments start at zero.
    this.flags = this.layout.chunkBytes.map((_, c) => engine.createStorage(`${label}.flags[${c}]`, this.flagWords(c) * 4));

    decls.forEach((d, i) => {
      const slot = slots[i]!;
      const trainable = d.trainable ?? true;
      const param = new Tensor(engine, d.shape, 'f32', this.params.storage(slot), 'arena', { name: d.name, requiresGrad: trainable });
      const grad = new Tensor(engine, d.shape, 'f32', this.grads.storage(slot), 'arena', { name: `${d.name}.grad` });
      param.grad = trainable ? grad : null;
      const e: Entry = { name: d.name, shape: [...d.shape], slot, decay: d.decay ?? true, trainable, param, grad };
      this.byName.set(d.name, e);
      this.order.push(e);
      if (d.init && numelOf(d.shape) > 0) engine.write(param, d.init);
    });
    this.writeFlags();
  }

  /** Lay out, allocate and initialise the parameters (uploads are ordered after recorded work). */
  static create(engine: Engine, decls: readonly ParamDecl[], opts: ParameterStoreOptions = {}): ParameterStore {
    return new ParameterStore(engine, decls, opts);
  }

  // ---------------------------------------------------------------- lookup

  get(name: string): Tensor {
    return this.entry(name).param;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Names in declaration order. */
  names(): string[] {
    return this.order.map((e) => e.name);
  }

  /** [name, tensor] in declaration order. */
  entries(): [string, Tensor][] {
    return this.order.map((e) => [e.name, e.param]);
  }

  /** The parameters that currently train. */
  trainable(): Tensor[] {
    return this.order.filter((e) => e.trainable).map((e) => e.param);
  }

  isTrainable(name: string): boolean {
    return this.entry(name).trainable;
  }

  decays(name: string): boolean {
    return this.entry(name).decay;
  }

  /** The arena slot (chunk, byte offset, numel) of a parameter. */
  slot(name: string): ArenaSlot {
    return this.entry(name).slot;
  }

  get chunks(): number {
    return this.layout.chunkBytes.length;
  }

  /** Elements in chunk c including padding (a multiple of 4). */
  chunkElements(c: number): number {
    return this.layout.chunkElements(c);
  }

  /** Storage covering the whole of chunk c of an arena (for kernels that walk a chunk). */
  chunkStorage(arena: Arena, c: number): Storage {
    const buffer = arena.buffers[c]!;
    return { buffer, offset: 0, byteLength: this.layout.chunkElements(c) * 4 };
  }

  /** u32 words of the flags buffer of chunk c. */
  flagWords(c: number): number {
    return Math.max(1, Math.ceil(this.layout.chunkElements(c) / FLAGS_PER_WORD));
  }

  // ---------------------------------------------------------------- gradients

  /** Zero every gradient: one clear per chunk, recorded into the current encoder. */
  zeroGrad(): void {
    for (let c = 0; c < this.chunks; c++) this.engine.clear(this.chunkStorage(this.grads, c));
  }

  /**
   * Freeze (false) or unfreeze (true) the parameters matching `which`: an exact name, a RegExp tested
   * against names, or a list of names. A frozen parameter gets no gradient (requiresGrad = false,
   * `.grad` = null, its gradient slot is cleared) and AdamW leaves it and its moments untouched.
   * Returns the number of parameters matched; throws when none matches.
   */
  setTrainable(which: string | RegExp | readonly string[], trainable: boolean): number {
    const hits =
      typeof which === 'string'
        ? [this.entry(which)]
        : which instanceof RegExp
          ? this.order.filter((e) => which.test(e.name))
          : which.map((n) => this.entry(n));
    if (hits.length === 0) throw new Error(`ParameterStore.setTrainable: no parameter matches ${String(which)}`);
    let changed = false;
    for (const e of hits) {
      if (e.trainable === trainable) continue;
      changed = true;
      e.trainable = trainable;
      e.param.requiresGrad = trainable;
      e.param.grad = trainable ? e.grad : null;
      if (!trainable && e.slot.numel > 0) this.engine.clear(e.grad);
    }
    if (changed) this.writeFlags();
    return hits.length;
  }

  /** The per-element flags of chunk c as the optimizer sees them (built on the CPU). */
  buildFlags(c: number): Uint32Array {
    const words = new Uint32Array(this.flagWords(c));
    for (const e of this.order) {
      if (e.slot.chunk !== c || e.slot.numel === 0) continue;
      const bits = (e.decay ? FLAG_DECAY : 0) | (e.trainable ? FLAG_TRAINABLE : 0);
      if (bits === 0) continue;
      const k0 = e.slot.offset / 4;
      const k1 = k0 + e.slot.numel;
      let k = k0;
      // head, up to a word boundary
      for (; k < k1 && k % FLAGS_PER_WORD !== 0; k++) words[k >> 4]! |= bits << ((k % FLAGS_PER_WORD) * FLAG_BITS);
      // whole words
      let full = 0;
      for (let j = 0; j < FLAGS_PER_WORD; j++) full |= bits << (j * FLAG_BITS);
      const w1 = Math.floor(k1 / FLAGS_PER_WORD);
      if (k >> 4 < w1) {
        words.fill(full >>> 0, k >> 4, w1);
        k = w1 * FLAGS_PER_WORD;
      }
      // tail
      for (; k < k1; k++) words[k >> 4]! |= bits << ((k % FLAGS_PER_WORD) * FLAG_BITS);
    }
    return words;
  }

  private writeFlags(): void {
    for (let c = 0; c < this.chunks; c++) this.engine.write(this.flags[c]!, this.buildFlags(c));
  }

  // ---------------------------------------------------------------- load / read

  /** Upload the values of one parameter (checks the length, and the shape when given). */
  load(name: string, data: Float32Array, shape?: readonly number[]): void {
    const e = this.entry(name);
    if (shape && (shape.length !== e.shape.length || shape.some((d, i) => d !== e.shape[i])))
      throw new Error(`ParameterStore.load: "${name}" has shape [${e.shape.join(', ')}], got [${shape.join(', ')}]`);
    if (data.length !== e.slot.numel)
      throw new Error(`ParameterStore.load: "${name}" of shape [${e.shape.join(', ')}] needs ${e.slot.numel} values, got ${data.length}`);
    if (e.slot.numel > 0) this.engine.write(e.param, data);
  }

  /**
   * Upload many parameters. With `strict` (default) every parameter must be present and no unknown
   * name may appear; otherwise only the given ones are loaded (unknown names still throw).
   */
  loadAll(values: Map<string, Float32Array> | Record<string, Float32Array>, opts: { strict?: boolean } = {}): void {
    const map = values instanceof Map ? values : new Map(Object.entries(values));
    const unknown = [...map.keys()].filter((n) => !this.byName.has(n));
    if (unknown.length) throw new Error(`ParameterStore.loadAll: unknown parameter(s) ${unknown.map((n) => `"${n}"`).join(', ')}`);
    if (opts.strict ?? true) {
      const missing = this.order.filter((e) => !map.has(e.name)).map((e) => `"${e.name}"`);
      if (missing.length) throw new Error(`ParameterStore.loadAll: missing parameter(s) ${missing.join(', ')}`);
    }
    for (const [n, d] of map) this.load(n, d);
  }

  /** Every parameter's values (one readback per chunk). */
  readAll(): Promise<Map<string, Float32Array>> {
    return this.readArena(this.params);
  }

  /** Every gradient (frozen parameters read as zeros). */
  readGrads(): Promise<Map<string, Float32Array>> {
    return this.readArena(this.grads);
  }

  /** Adam's m and v by parameter name, for checkpoints. */
  async readOptimizerState(): Promise<OptimizerMoments> {
    return { m: await this.readArena(this.m), v: await this.readArena(this.v) };
  }

  /** Restore m and v (every parameter must be present, with the right length). Bitwise exact. */
  loadOptimizerState(state: OptimizerMoments): void {
    for (const [which, map, arena] of [['m', state.m, this.m], ['v', state.v, this.v]] as const) {
      for (const e of this.order) {
        const d = map.get(e.name);
        if (!d) throw new Error(`ParameterStore.loadOptimizerState: ${which} of "${e.name}" is missing`);
        if (d.length !== e.slot.numel)
          throw new Error(`ParameterStore.loadOptimizerState: ${which} of "${e.name}" has ${d.length} values, shape [${e.shape.join(', ')}] needs ${e.slot.numel}`);
        if (e.slot.numel > 0) this.engine.write(arena.storage(e.slot), d);
      }
      const unknown = [...map.keys()].filter((n) => !this.byName.has(n));
      if (unknown.length) throw new Error(`ParameterStore.loadOptimizerState: unknown parameter(s) ${unknown.map((n) => `"${n}"`).join(', ')} in ${which}`);
    }
  }

  /** Zero Adam's m and v (recorded). */
  resetOptimizerState(): void {
    for (let c = 0; c < this.chunks; c++) {
      this.engine.clear(this.chunkStorage(this.m, c));
      this.engine.clear(this.chunkStorage(this.v, c));
    }
  }

  /** Raw contents of chunk c of an arena, padding included (tests, debugging). */
  async readChunk(arena: Arena, c: number): Promise<Float32Array> {
    const s = this.chunkStorage(arena, c);
    const t = new Tensor(this.engine, [this.layout.chunkElements(c)], 'f32', s, 'arena', { name: `${arena.label}[${c}]` });
    return t.readFloat32();
  }

  private async readArena(arena: Arena): Promise<Map<string, Float32Array>> {
    const chunks: Float32Array[] = [];
    for (let c = 0; c < this.chunks; c++) chunks.push(await this.readChunk(arena, c));
    const out = new Map<string, Float32Array>();
    for (const e of this.order) {
      const k = e.slot.offset / 4;
      out.set(e.name, e.slot.numel ? chunks[e.slot.chunk]!.slice(k, k + e.slot.numel) : new Float32Array(0));
    }
    return out;
  }

  // ---------------------------------------------------------------- misc

  /** Device bytes of the four arenas and the flags. */
  get bytes(): number {
    return this.params.bytes * 4 + this.flags.reduce((a, s) => a + s.buffer.size, 0);
  }

  describe(): string {
    return `${this.order.length} parameters, ${this.numel} elements in ${this.chunks} chunk(s), ${fmtBytes(this.bytes)} (params, grads, m, v, flags)`;
  }

  destroy(): void {
    for (const a of [this.params, this.grads, this.m, this.v]) a.destroy();
    for (const f of this.flags) f.buffer.destroy();
  }

  private entry(name: string): Entry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`ParameterStore: no parameter named "${name}"`);
    return e;
  }
}
