/**
 * AdamW over a ParameterStore (decoupled weight decay, as PyTorch's `torch.optim.AdamW`) with global
 * gradient-norm clipping computed on the device.
 *
 *   const opt = new AdamW(store, { weightDecay: 0.1, maxGradNorm: 1 });
 *   store.zeroGrad(); forward; backward(loss);
 *   opt.step(schedule(step));        // records into the current encoder: no submit, no readback
 *   engine.flush();
 *   if (logging) await opt.lastGradNorm().read();
 *
 * `step(lr)` records:
 *   1. `norm.sumsq_chunk` once per gradient chunk → partial sums (fixed order, no atomics),
 *   2. `norm.sumsq_finish` → gnorm = [‖g‖, ‖g‖²] in a small device buffer,
 *   3. with `gate` given: `norm.step_gate`, which clears gnorm's finite flag when the step's loss is
 *      not finite and sums good losses / counts bad steps into the caller's accumulator,
 *   3b. with a `lossScaler` (mixed precision f16): `precision.unscale` divides the gradients by the
 *      loss scale before step 1, and `precision.scale_update` after step 3 clears gnorm's finite
 *      flag on an f16 overflow (the update then skips) and adjusts the scale (engine/precision.ts),
 *   4. `adamw.vec4` once per chunk, which reads gnorm, scales g by min(1, maxNorm / (‖g‖ + 1e-6)),
 *      and updates p, m, v where the element's trainable bit is set (decay where its decay bit is).
 *      With `skipNonFinite`, a step whose gradient norm (or gated loss) is NaN or ±Inf writes
 *      nothing: p, m and v stay bitwise as they were. The step counter t still advances (it is a
 *      CPU uniform recorded before the flag exists), so later bias corrections count skipped steps.
 * The learning rate, the step t and the bias corrections are uniforms: schedules never recompile.
 * The step counter and the learning rate of the last step live on the CPU; `state()`/`loadState()`
 * save and restore them, and `store.readOptimizerState()`/`loadOptimizerState()` the moments (resume
 * is bitwise exact). The learning rate itself is the caller's (a schedule): the state records the one
 * applied at the last step, not a default.
 *
 * Gradient accumulation: the caller scales the losses; step() uses whatever the gradient arena holds.
 *
 * Stacked stores (`groups: G`, src/model/stacked.ts: G models, every parameter [G, ...]): steps 1–2
 * become `norm.sumsq_segments` per chunk and `norm.sumsq_groups`, one norm and finite flag per model,
 * and the update clips (and, with `skipNonFinite`, skips) each element by its own model's: the same
 * updates as G optimizers over G separate stores.
 */
import { adamw, ADAMW_WG, type AdamWVariant } from '../kernels/adamw.ts';
import { NORM_SEG_WG, NORM_SEGMENT_V4, normGroups, stepGate, sumSquaresChunk, sumSquaresFinish, sumSquaresGroups, sumSquaresSegments } from '../kernels/norm.ts';
import type { Engine } from './engine.ts';
import type { Storage } from './memory.ts';
import { grid1d } from './ops/common.ts';
import type { OptimizerMoments, ParameterStore } from './params.ts';
import type { LossScaler } from './precision.ts';
import { Tensor } from './tensor.ts';

export interface AdamWOptions {
  /** Learning rate used by `step()` when none is passed (default 1e-3; not saved in the state). */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (default 0.01, PyTorch's default). */
  weightDecay?: number;
  /** Clip the global gradient norm to this (null, 0 or Infinity: no clipping). */
  maxGradNorm?: number | null;
  /** Compute the gradient norm even when not clipping (default true), for `lastGradNorm()`. */
  trackGradNorm?: boolean;
  /** Kernel variant: 'vec4' (default) or the 'scalar' reference. */
  variant?: AdamWVariant;
  /** Items per invocation of the AdamW kernel (default 1, see `defaultUnroll`). */
  unroll?: number;
  /**
   * Most workgroups the norm's first stage uses per chunk (default `plan.adamw.normGroups`: 64 on
   * the software plan, where fewer groups measured faster, see docs/kernels/adamw.md; 1024 otherwise).
   */
  normGroups?: number;
  /**
   * Leave the weights and moments untouched on a step whose gradient norm (or, with `step`'s gate,
   * loss) is not finite (default false: the update runs and spreads the NaN). Implies tracking the norm.
   */
  skipNonFinite?: boolean;
  /**
   * Models of a stacked store (default 1): every parameter has a leading dimension of this size, and
   * the norm, clipping and non-finite skip are per model. The step gate is not available then.
   */
  groups?: number;
  /**
   * Gradients of a loss seeded with this dynamic loss scale (engine/precision.ts, mixed precision):
   * each step first divides the gradients by the scale, and after the gradient norm (and gate) the
   * scaler's update skips the step on an overflow (AdamW then leaves p, m and v untouched) and
   * adjusts the scale. Not with groups > 1.
   */
  lossScaler?: LossScaler;
}

/** The per-model norm plan of a stacked store: segment tables and the model of every vec4, per chunk. */
interface GroupedNorm {
  segs: Storage[];
  counts: number[];
  groupOf: Storage[];
  perGroup: number;
  partials: Storage;
}

/** Segments (≤ NORM_SEGMENT_V4 vec4s, inside one model's part of one parameter), listed model by model. */
function planGroupedNorm(engine: Engine, store: ParameterStore, G: number): GroupedNorm {
  const chunks = store.chunks;
  const segs: number[][] = Array.from({ length: chunks }, () => []);
  const groupOf = Array.from({ length: chunks }, (_, c) => new Uint32Array(store.chunkElements(c) / 4));
  const names = store.names();
  for (const name of names) {
    const shape = store.get(name).shape;
    const slot = store.slot(name);
    if (shape[0] !== G || (slot.numel / G) % 4 !== 0)
      throw new Error(`AdamW: groups ${G} needs every parameter stacked [${G}, ...] with a multiple of 4 elements per model; "${name}" is [${shape.join(', ')}]`);
  }
  let partial = 0;
  let perGroup = 0;
  for (let g = 0; g < G; g++) {
    const before = partial;
    for (const name of names) {
      const slot = store.slot(name);
      const n4 = slot.numel / G / 4;
      const first = slot.offset / 16 + g * n4;
      groupOf[slot.chunk]!.fill(g, first, first + n4);
      for (let k = 0; k < n4; k += NORM_SEGMENT_V4) segs[slot.chunk]!.push(first + k, Math.min(NORM_SEGMENT_V4, n4 - k), partial++);
    }
    perGroup = partial - before;
  }
  const upload = (label: string, data: Uint32Array): Storage => {
    const st = engine.createStorage(label, Math.max(16, data.byteLength));
    if (data.length) engine.write(st, data);
    return st;
  };
  return {
    segs: segs.map((t, c) => upload(`adamw.norm_segments[${c}]`, Uint32Array.from(t))),
    counts: segs.map((t) => t.length / 3),
    groupOf: groupOf.map((m, c) => upload(`adamw.group_of[${c}]`, m)),
    perGroup,
    partials: engine.createStorage('adamw.gnorm_group_partials', Math.max(16, partial * 4)),
  };
}

/** `step`'s optional finiteness gate (kernels/norm.ts `stepGate`). */
export interface StepGate {
  /** The step's loss, shape [1]. */
  loss: Tensor;
  /** Accumulator, at least 6 f32: [Σ good losses, good steps, bad steps, first bad loss, its ‖g‖, its step]. */
  acc: Tensor;
  /** Recorded as the step of the first bad step. */
  step: number;
}

/** What a checkpoint stores besides the moments. */
export interface AdamWState {
  /** Steps taken so far (t of the last step). */
  step: number;
  /** The learning rate applied at the last step (null before the first step, or when unknown). */
  lastLr: number | null;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number | null;
}

export type AdamWCheckpoint = AdamWState & OptimizerMoments;

/**
 * A state as `loadState` accepts it: also those of checkpoints written before `lastLr` existed, which
 * carry `lr` — the optimizer's constructor default (1e-3 unless set), not the learning rate a schedule
 * applied. That field is read and ignored; such a state restores `lastLr` as null (unknown).
 */
export type AdamWStateInput = Partial<Omit<AdamWState, 'lastLr'>> & { step: number; lastLr?: number | null; lr?: number };

/**
 * AdamW kernel items per invocation used when not given. 1 everywhere: on lavapipe, unrolling the
 * strided loop measured slower (docs/kernels/adamw.md); GPUs want one item per invocation anyway.
 */
export function defaultUnroll(engine: Engine): number {
  return engine.plan.adamw.unroll;
}

export class AdamW {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number | null;
  trackGradNorm: boolean;
  skipNonFinite: boolean;
  readonly variant: AdamWVariant;
  readonly unroll: number;
  /** Steps taken (the t of the last update). */
  t = 0;
  /** The learning rate applied at the last step (null before the first). */
  lastLr: number | null = null;

  private readonly engine: Engine;
  /** [‖g‖, ‖g‖², 0, 0] */
  private readonly gnorm: Storage;
  private readonly gnormTensor: Tensor;
  private readonly gnormAll: Tensor;
  private readonly partials: Storage;
  /** Per chunk: stage-1 workgroups and their first partial. */
  private readonly normPlan: { groups: number; base: number }[] = [];
  private readonly partialCount: number;
  /** Models of a stacked store (1: an ordinary store). */
  readonly groups: number;
  private readonly grouped: GroupedNorm | null;
  /** The dynamic loss scale of a mixed-precision run (null: gradients are unscaled). */
  readonly lossScaler: LossScaler | null;

  constructor(
    readonly store: ParameterStore,
    opts: AdamWOptions = {},
  ) {
    this.engine = store.engine;
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.maxGradNorm = opts.maxGradNorm ?? null;
    this.trackGradNorm = opts.trackGradNorm ?? true;
    this.skipNonFinite = opts.skipNonFinite ?? false;
    this.variant = opts.variant ?? 'vec4';
    this.unroll = opts.unroll ?? defaultUnroll(this.engine);
    for (const [k, x] of [['beta1', this.beta1], ['beta2', this.beta2]] as const)
      if (!(x >= 0 && x < 1)) throw new Error(`AdamW: ${k} must be in [0, 1), got ${x}`);
    if (!(this.eps >= 0)) throw new Error(`AdamW: eps must be >= 0, got ${this.eps}`);
    this.groups = opts.groups ?? 1;
    if (!(Number.isInteger(this.groups) && this.groups >= 1)) throw new Error(`AdamW: groups must be a positive integer, got ${opts.groups}`);
    this.grouped = this.groups > 1 ? planGroupedNorm(this.engine, store, this.groups) : null;
    this.lossScaler = opts.lossScaler ?? null;
    if (this.lossScaler && this.groups > 1) throw new Error('AdamW: a loss scaler is not available with groups > 1');

    const maxGroups = opts.normGroups ?? this.engine.plan.adamw.normGroups;
    let base = 0;
    for (let c = 0; c < store.chunks; c++) {
      const groups = normGroups(store.chunkElements(c) / 4, maxGroups);
      this.normPlan.push({ groups, base });
      base += groups;
    }
    this.partialCount = base;
    this.partials = this.engine.createStorage('adamw.gnorm_partials', Math.max(16, base * 4));
    // [‖g‖, ‖g‖², finite, 0]; grouped: [norms (G), squares (G), finite flags (G)]
    const G = this.groups;
    this.gnorm = this.engine.createStorage('adamw.gnorm', G > 1 ? Math.max(16, 12 * G) : 16);
    this.gnormTensor = new Tensor(this.engine, [G], 'f32', this.gnorm, 'arena', { name: 'grad_norm' });
    this.gnormAll = new Tensor(this.engine, G > 1 ? [3, G] : [4], 'f32', this.gnorm, 'arena', { name: 'grad_norm_state' });
  }

  private get clipping(): boolean {
    const c = this.maxGradNorm;
    return c !== null && c > 0 && Number.isFinite(c);
  }

  /**
   * Record the global gradient norm ‖g‖ (over every chunk of the gradient arena; frozen parameters'
   * gradients are zero) into the device buffer behind `lastGradNorm()`. `step()` calls this itself.
   */
  recordGradNorm(): Tensor {
    const e = this.engine;
    const s = this.store;
    if (s.chunks === 0) {
      e.clear(this.gnorm);
      return this.gnormTensor;
    }
    const gr = this.grouped;
    if (gr) {
      for (let c = 0; c < s.chunks; c++) {
        const count = gr.counts[c]!;
        if (count === 0) continue;
        e.dispatch(sumSquaresSegments, [s.chunkStorage(s.grads, c), gr.segs[c]!, gr.partials], { count }, grid1d(count, NORM_SEG_WG), {
          flops: 2 * s.chunkElements(c),
          bytes: 4 * s.chunkElements(c) + 16 * count,
        });
      }
      e.dispatch(sumSquaresGroups, [gr.partials, this.gnorm], { groups: this.groups, perGroup: gr.perGroup }, grid1d(this.groups, NORM_SEG_WG), {
        flops: this.groups * gr.perGroup,
        bytes: 4 * (this.groups * gr.perGroup + 3 * this.groups),
      });
      return this.gnormTensor;
    }
    for (let c = 0; c < s.chunks; c++) {
      const n4 = s.chunkElements(c) / 4;
      const { groups, base } = this.normPlan[c]!;
      e.dispatch(sumSquaresChunk, [s.chunkStorage(s.grads, c), this.partials], { n4, groups, base }, [groups, 1, 1], {
        flops: 8 * n4,
        bytes: 16 * n4 + 4 * groups,
      });
    }
    e.dispatch(sumSquaresFinish, [this.partials, this.gnorm], { count: this.partialCount }, [1, 1, 1], { flops: this.partialCount, bytes: 4 * this.partialCount + 8 });
    return this.gnormTensor;
  }

  /**
   * Take one step with learning rate `lr` (default: this.lr): record the gradient norm (when
   * clipping or tracking it) and one AdamW dispatch per chunk. Nothing is submitted or read back.
   */
  step(lr: number = this.lr, gate?: StepGate): void {
    if (!Number.isFinite(lr)) throw new Error(`AdamW.step: learning rate ${lr} is not finite`);
    const e = this.engine;
    const s = this.store;
    const clip = this.clipping;
    const scaler = this.lossScaler;
    if (gate && this.grouped) throw new Error('AdamW.step: the step gate is not available with groups > 1 (one loss per store)');
    // Mixed precision: the gradients of S·loss back to those of the loss first.
    scaler?.unscale(s);
    if (clip || this.trackGradNorm || this.skipNonFinite || gate || scaler) this.recordGradNorm();
    if (gate) {
      if (gate.acc.numel < 6) throw new Error(`AdamW.step: the gate accumulator needs 6 elements, got ${gate.acc.numel}`);
      e.dispatch(stepGate, [gate.loss, this.gnorm, gate.acc], { step: gate.step }, [1, 1, 1], { flops: 4, bytes: 40 });
    }
    // An overflow clears the finite flag (the update below then skips) and backs the scale off.
    scaler?.update(this.gnorm);
    this.t++;
    this.lastLr = lr;
    const t = this.t;
    const uniforms = {
      n: 0,
      stride: 0,
      clip: clip ? 1 : 0,
      step: t,
      lr,
      beta1: this.beta1,
      beta2: this.beta2,
      omb1: 1 - this.beta1,
      omb2: 1 - this.beta2,
      eps: this.eps,
      wd: this.weightDecay,
      bc1: 1 - Math.pow(this.beta1, t),
      bc2: 1 - Math.pow(this.beta2, t),
      max_norm: clip ? this.maxGradNorm! : 0,
      skip: this.skipNonFinite || scaler ? 1 : 0,
      ...(this.grouped ? { groups: this.groups } : {}),
    };
    const spec = adamw({ variant: this.variant, unroll: this.unroll, ...(this.grouped ? { grouped: true } : {}) });
    const v4 = this.variant === 'vec4';
    for (let c = 0; c < s.chunks; c++) {
      const elems = s.chunkElements(c);
      if (elems === 0) continue;
      uniforms.n = v4 ? elems / 4 : elems;
      uniforms.stride = Math.ceil(uniforms.n / this.unroll);
      e.dispatch(
        spec,
        [
          s.chunkStorage(s.params, c),
          s.chunkStorage(s.grads, c),
          s.chunkStorage(s.m, c),
          s.chunkStorage(s.v, c),
          s.flags[c]!,
          this.gnorm,
          ...(this.grouped ? [this.grouped.groupOf[c]!] : []),
        ],
        uniforms,
        grid1d(uniforms.stride, ADAMW_WG),
        { flops: 18 * elems, bytes: 28 * elems + s.flagWords(c) * 4 },
      );
    }
  }

  /**
   * The device tensor holding the global gradient norm (before clipping) of the last step, shape [1]
   * (grouped: [G], one norm per model).
   * Read it only when logging: `await opt.lastGradNorm().read()`. It is overwritten by the next step.
   */
  lastGradNorm(): Tensor {
    return this.gnormTensor;
  }

  /**
   * The device tensor [‖g‖, ‖g‖², finite flag, 0] of the last step, shape [4]: the flag is 1 when the
   * gradient norm (and the gated loss) was finite, 0 when the step was non-finite. Grouped: [3, G]
   * (norms, squares, flags).
   */
  lastGradState(): Tensor {
    return this.gnormAll;
  }

  /** Step counter and hyperparameters (the moments are in the store: `readOptimizerState()`). */
  state(): AdamWState {
    return {
      step: this.t,
      lastLr: this.lastLr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      maxGradNorm: this.maxGradNorm,
    };
  }

  /** Restore the step counter, the last learning rate and the hyperparameters present in `s`. */
  loadState(s: AdamWStateInput): void {
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`AdamW.loadState: step must be a non-negative integer, got ${s.step}`);
    if (s.lastLr !== undefined && s.lastLr !== null && !Number.isFinite(s.lastLr)) throw new Error(`AdamW.loadState: lastLr must be a finite number or null, got ${s.lastLr}`);
    this.t = s.step;
    this.lastLr = s.lastLr ?? null;
    if (s.beta1 !== undefined) this.beta1 = s.beta1;
    if (s.beta2 !== undefined) this.beta2 = s.beta2;
    if (s.eps !== undefined) this.eps = s.eps;
    if (s.weightDecay !== undefined) this.weightDecay = s.weightDecay;
    if (s.maxGradNorm !== undefined) this.maxGradNorm = s.maxGradNorm;
  }

  /** Everything needed to resume: state() plus m and v by parameter name. */
  async checkpoint(): Promise<AdamWCheckpoint> {
    return { ...this.state(), ...(await this.store.readOptimizerState()) };
  }

  /** Resume from `checkpoint()`: the continuation is bitwise identical. */
  restore(ck: AdamWStateInput & OptimizerMoments): void {
    this.store.loadOptimizerState(ck);
    this.loadState(ck);
  }

  destroy(): void {
    this.partials.buffer.destroy();
    this.gnorm.buffer.destroy();
    const gr = this.grouped;
    if (gr) for (const st of [...gr.segs, ...gr.groupOf, gr.partials]) st.buffer.destroy();
  }
}

