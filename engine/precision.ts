/**
 * Mixed precision: half-precision storage of the matmul operands (f16, or bfloat16) with f32
 * accumulation, and (f16) a dynamic loss scale.
 *
 *   setPrecision(engine, 'f16');              // needs the adapter feature shader-f16
 *   const scaler = new LossScaler(engine);    // S = 2^16 at first
 *   const opt = new AdamW(store, { lossScaler: scaler, ... });
 *   backward(loss, scaler.seed);              // gradients of S·loss
 *   opt.step(lr);                             // unscale, norm, skip on overflow, update S, AdamW
 *
 * With precision 'f16', `linear` and `matmul` (engine/ops/matmul.ts) cast their operands to f16
 * before each product (`castHalf`: x and W in the forward, dY in the backward) and run the product
 * with half operands and f32 accumulation (the shared-memory matmul variants read f16, kernels/
 * matmul.ts); outputs, gradients, the weights AdamW updates (the f32 master copy) and every other op
 * stay f32. The casts are passes of their own (one read of f32, one write of f16): the saving is in
 * the products' operand loads and in the saved activations, the cost in the extra passes.
 *
 * Why a loss scale: gradients entering a product are stored as f16, whose smallest subnormal is
 * 2⁻²⁴ ≈ 6e−8 and largest finite 65504. Seeding backward with S instead of 1 lifts small gradients
 * out of the underflow; a gradient cast that overflows (|S·dY| > 65504) sets a flag, and the step
 * is then skipped and S halved. After `interval` good steps in a row S doubles (PyTorch's
 * GradScaler rule, 2^16 / 0.5 / 2 / 2000 by default). All of it runs on the device: no readback per
 * step (kernels/precision.ts).
 *
 * bf16 (`setPrecision(engine, 'bf16')`): the same casts and products with bfloat16 operands (the upper
 * 16 bits of an f32, rounded to nearest even: f32's range with 8 significant bits instead of f16's
 * 11), packed two to a u32 word, so it needs no adapter feature. With f32's exponent range a gradient
 * underflows only below 2⁻¹³³ (f32: 2⁻¹⁴⁹), so it takes no loss scale (the Trainer seeds backward with 1).
 */
import { castBf16 as castBf16Kernel, castHalf as castKernel, FLAG_ACTIVATION, FLAG_GRADIENT, PRECISION_WG, scaleUpdate, unscale } from '../kernels/precision.ts';
import type { Engine } from './engine.ts';
import type { Storage } from './memory.ts';
import { grid1d } from './ops/common.ts';
import type { ParameterStore } from './params.ts';
import { type HalfType, Tensor } from './tensor.ts';

export type Precision = 'f32' | 'f16' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['f32', 'f16', 'bf16'];

/**
 * Set the storage precision of the matmul operands of `linear` and `matmul` on this engine. 'f16'
 * needs the adapter feature `shader-f16` (`kindling device` says whether an adapter offers it, and
 * behind which Dawn toggles); 'bf16' runs on any adapter.
 */
export function setPrecision(engine: Engine, precision: Precision): void {
  if (!PRECISIONS.includes(precision)) throw new Error(`precision must be one of ${PRECISIONS.join(', ')}; got "${precision}"`);
  if (precision === 'f16' && !engine.device.features.has('shader-f16'))
    throw new Error(
      `precision f16 needs the adapter feature shader-f16, which "${engine.device.info.description}" does not offer here ` +
        '(on NVIDIA through Vulkan Dawn hides it unless the adapter toggle vulkan_enable_f16_on_nvidia is on: KINDLING_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia; `kindling device` lists what each toggle unlocks); precision bf16 needs no feature',
    );
  engine.precision = precision;
  if (precision !== 'f32' && !engine.halfFlags) {
    engine.halfFlags = engine.createStorage('precision.flags', 16);
    engine.clear(engine.halfFlags);
  }
}

/** Which overflow a cast reports: a gradient's (skips the step) or an activation's / weight's (counted). */
export type CastKind = 'gradient' | 'activation';

/**
 * x (f32) as a new tensor of the engine's half type (f16 or bf16, its precision), same shape, no
 * autograd. f16: values beyond ±65504 (and NaN, ±Inf) become ±65504 and set the
 * engine's overflow flag of `kind`; bf16 (f32's range): NaN and ±Inf set it. Needs an engine in
 * precision f16 or bf16 (the flags).
 */
export function castHalf(x: Tensor, kind: CastKind = 'activation'): Tensor {
  const e = x.engine;
  if (x.dtype !== 'f32') throw new Error(`castHalf: tensor "${x.name}" has dtype ${x.dtype}, expected f32`);
  if (!e.halfFlags || e.precision === 'f32') throw new Error('castHalf: the engine is not in a half precision (setPrecision(engine, "f16" | "bf16"))');
  const t: HalfType = e.precision;
  const out = e.empty(x.shape, t, `${x.name}.${t}`);
  const vec4 = x.numel % 4 === 0 && x.storage.offset % 16 === 0;
  // f16: an element per invocation (a vec4 with vec4); bf16: a pair (two with vec4).
  const n = vec4 ? x.numel / 4 : x.numel;
  const invocations = vec4 || t === 'f16' ? n : Math.ceil(n / 2);
  const spec = t === 'f16' ? castKernel({ vec4 }) : castBf16Kernel({ vec4 });
  if (n > 0) e.dispatch(spec, [x, out, e.halfFlags], { n, slot: kind === 'gradient' ? FLAG_GRADIENT : FLAG_ACTIVATION }, grid1d(invocations, PRECISION_WG), { bytes: 6 * x.numel });
  return out;
}

export interface LossScalerOptions {
  /** The first scale (default 2^16, PyTorch's). */
  initScale?: number;
  /** Factor on an overflow (default 0.5). */
  backoff?: number;
  /** Factor after `interval` good steps in a row (default 2). */
  growth?: number;
  /** Good steps in a row before the scale grows (default 2000). */
  interval?: number;
  /** Bounds of the scale (default 1 and 2^24). */
  minScale?: number;
  maxScale?: number;
}

/** The scaler's counters, read back from the device. */
export interface LossScaleState {
  scale: number;
  /** Good steps since the scale last changed. */
  goodSteps: number;
  /** Steps skipped because a gradient overflowed f16 (or the gradient norm was not finite). */
  skippedSteps: number;
  /** Steps in which an activation or weight cast was clamped to ±65504. */
  activationOverflowSteps: number;
}

/** Dynamic loss scale on the device (see the module header). */
export class LossScaler {
  readonly state: Storage;
  /** The scale as a [1] tensor: the gradient to seed backward with (`backward(loss, scaler.seed)`). */
  readonly seed: Tensor;
  private readonly stateTensor: Tensor;
  readonly opts: Required<LossScalerOptions>;

  constructor(
    readonly engine: Engine,
    opts: LossScalerOptions = {},
  ) {
    if (!engine.halfFlags) throw new Error('LossScaler: the engine is not in precision f16 (setPrecision(engine, "f16"))');
    this.opts = { initScale: 2 ** 16, backoff: 0.5, growth: 2, interval: 2000, minScale: 1, maxScale: 2 ** 24, ...opts };
    const o = this.opts;
    for (const [k, v] of Object.entries(o)) if (!(Number.isFinite(v) && v > 0)) throw new Error(`LossScaler: ${k} must be a positive number, got ${v}`);
    if (!Number.isInteger(o.interval)) throw new Error(`LossScaler: interval must be an integer, got ${o.interval}`);
    if (o.backoff >= 1 || o.growth <= 1) throw new Error(`LossScaler: backoff must be < 1 and growth > 1, got ${o.backoff} and ${o.growth}`);
    if (o.minScale > o.maxScale || o.initScale < o.minScale || o.initScale > o.maxScale)
      throw new Error(`LossScaler: need minScale ≤ initScale ≤ maxScale, got ${o.minScale}, ${o.initScale}, ${o.maxScale}`);
    this.state = engine.createStorage('precision.loss_scale', 16);
    this.stateTensor = new Tensor(engine, [4], 'f32', this.state, 'arena', { name: 'loss_scale_state' });
    this.seed = new Tensor(engine, [1], 'f32', this.state, 'arena', { name: 'loss_scale' });
    this.load({ scale: o.initScale, goodSteps: 0, skippedSteps: 0, activationOverflowSteps: 0 });
  }

  /** Divide every gradient chunk of `store` by the scale (before the gradient norm). */
  unscale(store: ParameterStore): void {
    const e = this.engine;
    for (let c = 0; c < store.chunks; c++) {
      const n4 = store.chunkElements(c) / 4;
      if (n4 === 0) continue;
      e.dispatch(unscale, [store.chunkStorage(store.grads, c), this.state], { n4 }, grid1d(n4, PRECISION_WG), { flops: 4 * n4, bytes: 32 * n4 });
    }
  }

  /**
   * After the gradient norm of the step (`gnorm`: [‖g‖, ‖g‖², finite flag, …]) and before AdamW: on a
   * gradient overflow clear the finite flag (AdamW skips the step) and back off, else count the good
   * step and grow the scale after `interval` of them.
   */
  update(gnorm: Storage): void {
    const o = this.opts;
    this.engine.dispatch(
      scaleUpdate,
      [this.state, this.engine.halfFlags!, gnorm],
      { interval: o.interval, backoff: o.backoff, growth: o.growth, min_scale: o.minScale, max_scale: o.maxScale },
      [1, 1, 1],
      { flops: 4, bytes: 40 },
    );
  }

  /** The scale and its counters (a readback). */
  async read(): Promise<LossScaleState> {
    const a = await this.stateTensor.read();
    return { scale: a[0]!, goodSteps: a[1]!, skippedSteps: a[2]!, activationOverflowSteps: a[3]! };
  }

  /** Overwrite the scale and counters (resume from a checkpoint's `read()`). */
  load(s: LossScaleState): void {
    if (!(Number.isFinite(s.scale) && s.scale > 0)) throw new Error(`LossScaler.load: scale must be a positive number, got ${s.scale}`);
    this.engine.write(this.state, Float32Array.from([s.scale, s.goodSteps, s.skippedSteps, s.activationOverflowSteps]));
  }

  destroy(): void {
    this.state.buffer.destroy();
  }
}
