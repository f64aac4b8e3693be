/**
 * The training loop: next-token loss on loss-masked positions, AdamW with on-device clipping, LR
 * schedules, gradient accumulation, evaluation, early stopping, periodic and best checkpoints,
 * metrics as JSONL and a progress bar.
 *
 * One optimizer step = upload every micro-batch, then record (zero grads → forward/backward per
 * micro-batch → clip + AdamW) and submit once. The loss and gradient norm stay on the device and are
 * read back only at log steps (the step gate's counts also before a checkpoint write). At most two
 * steps are in flight.
 *
 * Non-finite steps: every step's loss and gradient norm go through the optimizer's step gate
 * (kernels/norm.ts `stepGate`), which counts non-finite steps on the device and records the first
 * one's loss, norm and step. The counts are read at log steps and before every checkpoint write;
 * policy `stop` (default) ends the run there with a `NonFiniteError` naming the step, the values and
 * the last checkpoint written; `skip` has AdamW leave weights and moments untouched on such a step
 * and reports how many were skipped. `save` refuses weights or moments that are not finite.
 *
 * Interruption: `stop.signal` set (by a signal handler) ends the run after the step in flight, with
 * a `step-N` checkpoint written (TrainResult.interrupted). Any other failure during the run (device
 * lost, out of memory) is rethrown as a `TrainingError` naming the step and the last checkpoint.
 *
 * Data comes from a `BatchSource` indexed by (step, micro-batch): a resumed run asks for exactly the
 * batches the uninterrupted run would have seen, and dropout masks depend only on (seed, step), so
 * resuming reproduces the uninterrupted run's losses bitwise on the same adapter.
 */
import { backward } from '../../engine/autograd.ts';
import {
  type LoadedCheckpoint,
  latestCheckpoint,
  loadCheckpoint,
  pruneCheckpoints,
  readSidecar,
  saveCheckpoint,
  checkpointName,
  STEP_PREFIX,
} from '../io/checkpoint.ts';
import type { Engine } from '../../engine/engine.ts';
import { accumulate, scale } from '../../engine/ops/elementwise.ts';
import { AdamW, type AdamWOptions } from '../../engine/optim.ts';
import { LossScaler, type LossScalerOptions, type LossScaleState, type Precision, setPrecision } from '../../engine/precision.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { Batch } from '../data/procedural/batch.ts';
import { toHfConfig } from '../model/config.ts';
import type { GPT } from '../model/gpt.ts';
import { JsonlWriter } from '../util/jsonl.ts';
import { Progress } from '../util/progress.ts';
import { basename, join } from 'node:path';
import { gpuWait } from '../../engine/wait.ts';

/** Deterministic data: the micro-batch for (step, micro). */
export interface BatchSource {
  batch(step: number, micro: number): Batch;
  /** JSON describing the stream (saved in checkpoints). */
  describe?(): unknown;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  tokens: number;
  [k: string]: number;
}

/** What to do on a step whose loss or gradient norm is NaN or ±Inf. */
export type NonFinitePolicy = 'stop' | 'skip';

/** Set `signal` (e.g. from a SIGINT handler) to end the run after the step in flight with a checkpoint. */
export interface StopRequest {
  signal: string | null;
}

/** Training stopped because a step's loss or gradient norm, or the weights to save, were not finite. */
export class NonFiniteError extends Error {
  constructor(
    message: string,
    /** The 1-based optimizer step where it was seen first. */
    readonly step: number,
    readonly lastCheckpoint: string | null,
  ) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

/** Training stopped by a failure of the device or the host (device lost, out of memory, ...). */
export class TrainingError extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly lastCheckpoint: string | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TrainingError';
  }
}

/** Index of the first NaN or ±Inf in x, or -1. */
function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return i;
  return -1;
}

/** "last checkpoint: X" / "no checkpoint was written", for messages. */
export function lastCheckpointText(path: string | null): string {
  return path ? `last checkpoint: ${path}` : 'no checkpoint was written';
}

export interface TrainerOptions {
  model: GPT;
  data: BatchSource;
  /** Optimizer steps to take in total. */
  maxSteps: number;
  /** Learning rate at an optimizer step (0-based). */
  lr: (step: number) => number;
  optimizer?: AdamWOptions;
  gradAccum?: number;
  /** Seed of the dropout masks. */
  seed?: number;
  logEvery?: number;
  /** Evaluate every N steps (and at the end) with `evalBatches`. */
  evalEvery?: number;
  evalBatches?: () => Iterable<Batch>;
  /**
   * Replaces `Trainer.evaluate` at the periodic evaluations (e.g. to add a metric such as problem
   * accuracy). Keys of the result beyond loss, accuracy and tokens are written to metrics.jsonl as
   * `eval_<key>`.
   */
  evaluate?: (batches: Iterable<Batch>) => Promise<EvalResult>;
  /** Stop after this many evaluations without a better validation accuracy. */
  patience?: number;
  metricsPath?: string;
  /** Run directory for checkpoints (`step-N/`, `best/`). */
  checkpointDir?: string;
  saveEvery?: number;
  keepCheckpoints?: number;
  saveBest?: boolean;
  progress?: boolean;
  /** Extra JSON saved in checkpoints (e.g. the resolved config). */
  trainConfig?: unknown;
  /** A step whose loss or gradient norm is not finite: stop the run (default) or skip the step. */
  nonFinite?: NonFinitePolicy;
  /**
   * Storage precision of the matmul operands (engine/precision.ts): 'f32' (default), 'f16' (half
   * operands, f32 accumulation, a dynamic loss scale; needs the adapter feature shader-f16) or
   * 'bf16' (bfloat16 operands, f32 accumulation, no scale; any adapter). The trainer sets it on the
   * engine, so its evaluations run in it too, and `destroy()` sets f32 back.
   */
  precision?: Precision;
  /** The dynamic loss scale of precision 'f16' (defaults: PyTorch GradScaler's). */
  lossScale?: LossScalerOptions;
  /** Checked after every step: a signal set here ends the run with a `step-N` checkpoint. */
  stop?: StopRequest;
  /** Called after each logged step. */
  onLog?: (rec: StepLog) => void;
  /** Called after each evaluation. */
  onEval?: (step: number, result: EvalResult) => void;
}

export interface StepLog {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  ms_per_step: number;
  [k: string]: number;
}

export interface TrainResult {
  steps: number;
  losses: { step: number; loss: number }[];
  evals: ({ step: number } & EvalResult)[];
  bestAccuracy: number;
  stoppedEarly: boolean;
  /** Steps skipped as non-finite (policy `skip`), over the whole run including before a resume. */
  skippedSteps: number;
  /** The signal that ended the run early (its checkpoint is `lastCheckpoint`), or null. */
  interrupted: string | null;
  /** The last `step-N` checkpoint written or resumed from (null if none). */
  lastCheckpoint: string | null;
}

/** The device accumulator of the step gate, read back (see AdamW's StepGate). */
interface GateTotals {
  /** Mean loss of the good steps (NaN if none). */
  loss: number;
  good: number;
  bad: number;
  firstBadLoss: number;
  firstBadGradNorm: number;
  firstBadStep: number;
}

export class Trainer {
  readonly engine: Engine;
  readonly optimizer: AdamW;
  /** The dynamic loss scale of precision 'f16' (null in f32). */
  readonly scaler: LossScaler | null;
  /** Optimizer steps completed. */
  step = 0;
  /** [Σ good losses, good steps, bad steps, first bad loss, its ‖g‖, its step, 0, 0] since the last log. */
  private lossSum: Tensor;
  /** The loss of the step being recorded (mean over its micro-batches). */
  private stepLoss: Tensor;
  /** Skipped (non-finite) steps counted so far, including those a resumed checkpoint reports. */
  skippedSteps = 0;
  /** The last `step-N` checkpoint written or resumed from (what --resume continues from). */
  lastCheckpoint: string | null = null;
  private savedAt = -1;
  private bar: Progress | null = null;
  private inflight: Promise<unknown>[] = [];
  private metrics: JsonlWriter | null;
  private bestAcc = -Infinity;
  private evalsSinceBest = 0;

  constructor(readonly o: TrainerOptions) {
    this.engine = o.model.engine;
    if (o.nonFinite !== undefined && o.nonFinite !== 'stop' && o.nonFinite !== 'skip')
      throw new Error(`Trainer: nonFinite must be "stop" or "skip", got "${o.nonFinite}"`);
    setPrecision(this.engine, o.precision ?? 'f32');
    this.scaler = o.precision === 'f16' ? new LossScaler(this.engine, o.lossScale) : null;
    this.optimizer = new AdamW(o.model.params, { ...o.optimizer, skipNonFinite: this.policy === 'skip', ...(this.scaler ? { lossScaler: this.scaler } : {}) });
    this.lossSum = this.engine.zeros([8], 'f32', 'loss_sum').keep();
    this.stepLoss = this.engine.zeros([1], 'f32', 'step_loss').keep();
    this.metrics = o.metricsPath ? new JsonlWriter(o.metricsPath) : null;
  }

  get policy(): NonFinitePolicy {
    return this.o.nonFinite ?? 'stop';
  }

  get gradAccum(): number {
    return this.o.gradAccum ?? 1;
  }

  /** Record and submit one optimizer step (no readback); returns the token positions it processed. */
  recordStep(): number {
    const { model } = this.o;
    const e = this.engine;
    const A = this.gradAccum;
    const s = this.step;
    const batches = Array.from({ length: A }, (_, m) => this.o.data.batch(s, m));
    e.tidy(() => {
      // Uploads first: writeBuffer is ordered before the step's single submit.
      const dev = batches.map((b) => model.uploadBatch(b));
      model.params.zeroGrad();
      e.clear(this.stepLoss);
      dev.forEach((b, m) => {
        e.startGrad();
        const { loss } = model.loss(b, { train: true, seed: this.o.seed ?? 0, step: s * A + m });
        e.noGrad(() => accumulate(this.stepLoss, loss, 1 / A));
        // Precision f16: backward from S·loss (the scaler's seed), unscaled in the optimizer step.
        backward(A === 1 ? loss : scale(loss, 1 / A), this.scaler?.seed);
      });
      // The gate adds the step's loss to lossSum when it and the gradient norm are finite.
      this.optimizer.step(this.o.lr(s), { loss: this.stepLoss, acc: this.lossSum, step: s + 1 });
    });
    e.flush();
    this.step++;
    // Positions processed (tokens/s counts them all; the loss averages over the supervised ones).
    return batches.reduce((n, b) => n + b.batch * b.seqLen, 0);
  }

  /** Keep at most two steps in flight. */
  private async throttle(): Promise<void> {
    this.inflight.push(this.engine.gpu.queue.onSubmittedWorkDone());
    while (this.inflight.length > 2) await gpuWait(this.inflight.shift()!);
  }

  /** The step gate's totals since the last take; `clear` resets them. */
  private async readTotals(clear: boolean): Promise<GateTotals> {
    const a = await this.lossSum.read();
    if (clear) this.engine.clear(this.lossSum);
    const good = a[1]!;
    return { loss: good ? a[0]! / good : NaN, good, bad: a[2]!, firstBadLoss: a[3]!, firstBadGradNorm: a[4]!, firstBadStep: a[5]! };
  }

  /** Under policy `stop`, throws a NonFiniteError when the totals hold a non-finite step. */
  private checkFinite(t: GateTotals, from: number): void {
    if (t.bad === 0 || this.policy !== 'stop') return;
    throw new NonFiniteError(
      `non-finite training at step ${t.firstBadStep} (in steps ${from + 1}..${this.step}): loss ${t.firstBadLoss}, gradient norm ${t.firstBadGradNorm}; ` +
        `training stopped, ${lastCheckpointText(this.lastCheckpoint)} (lower the learning rate, or set nonfinite: skip to skip such steps)`,
      t.firstBadStep,
      this.lastCheckpoint,
    );
  }

  /** Masked loss and token accuracy over evaluation batches (no gradients, no dropout). */
  async evaluate(batches: Iterable<Batch>): Promise<EvalResult> {
    const { model } = this.o;
    const e = this.engine;
    let lossW = 0;
    let correct = 0;
    let total = 0;
    for (const b of batches) {
      const [lossT, accT] = e.noGrad(() =>
        e.tidy(() => {
          const d = model.uploadBatch(b);
          const { loss, logits } = model.loss(d, { train: false });
          return [loss, model.accuracy(logits, d)] as const;
        }),
      );
      const lv = (await lossT.read())[0]!;
      const [c, n] = await accT.read();
      lossT.dispose();
      accT.dispose();
      correct += c!;
      total += n!;
      lossW += lv * n!;
    }
    return { loss: total ? lossW / total : NaN, accuracy: total ? correct / total : NaN, tokens: total };
  }

  /**
   * Train until maxSteps (or early stopping, or `stop.signal`). A non-finite step under policy
   * `stop` throws a NonFiniteError; any other failure is rethrown as a TrainingError naming the
   * step and the last checkpoint (which is left as it was).
   */
  async run(): Promise<TrainResult> {
    try {
      return await this.runLoop();
    } catch (e) {
      // End the progress line so the message that follows starts on its own line.
      this.bar?.finish(`stopped at step ${this.step}`);
      this.bar = null;
      if (e instanceof NonFiniteError) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw new TrainingError(`training stopped at step ${this.step}: ${msg}; ${lastCheckpointText(this.lastCheckpoint)}`, this.step, this.lastCheckpoint, { cause: e });
    }
  }

  private async runLoop(): Promise<TrainResult> {
    const o = this.o;
    const logEvery = o.logEvery ?? 10;
    const losses: TrainResult['losses'] = [];
    const evals: TrainResult['evals'] = [];
    const bar = (this.bar = o.progress === false ? null : new Progress({ label: 'train', total: o.maxSteps, unit: 'step' }));
    let tLast = performance.now();
    let stepsSince = 0;
    let tokensSince = 0;
    let stoppedEarly = false;
    let lastLoss = NaN;
    /** The step at which the gate's totals were last cleared. */
    let totalsFrom = this.step;
    const device = this.engine.device;
    while (this.step < o.maxSteps && !o.stop?.signal) {
      device.check();
      const s = this.step;
      tokensSince += this.recordStep();
      stepsSince++;
      await this.throttle();
      const isLast = this.step === o.maxSteps;
      if (this.step % logEvery === 0 || isLast) {
        const totals = await this.readTotals(true);
        this.checkFinite(totals, totalsFrom);
        totalsFrom = this.step;
        this.skippedSteps += totals.bad;
        const loss = totals.loss;
        const gn = (await this.optimizer.lastGradNorm().read())[0]!;
        const now = performance.now();
        const dt = (now - tLast) / 1000;
        const rec: StepLog = {
          step: this.step,
          loss,
          lr: o.lr(s),
          grad_norm: gn,
          tokens_per_s: tokensSince / dt,
          ms_per_step: (1000 * dt) / stepsSince,
          ...(this.policy === 'skip' ? { skipped: totals.bad } : {}),
          ...(this.scaler ? await scalerLog(this.scaler) : {}),
        };
        tLast = now;
        stepsSince = 0;
        tokensSince = 0;
        lastLoss = loss;
        losses.push({ step: this.step, loss });
        this.metrics?.write({ ...rec, time: new Date().toISOString() });
        o.onLog?.(rec);
      }
      bar?.update(this.step, `loss ${lastLoss.toFixed(4)}${this.skippedSteps ? `, ${this.skippedSteps} skipped` : ''}`);
      const doEval = o.evalBatches && o.evalEvery && (this.step % o.evalEvery === 0 || isLast);
      let improved = false;
      if (doEval) {
        const r = await (o.evaluate ? o.evaluate(o.evalBatches!()) : this.evaluate(o.evalBatches!()));
        evals.push({ step: this.step, ...r });
        this.metrics?.write(evalRecord(this.step, r));
        o.onEval?.(this.step, r);
        if (r.accuracy > this.bestAcc) {
          this.bestAcc = r.accuracy;
          this.evalsSinceBest = 0;
          improved = true;
        } else this.evalsSinceBest++;
      }
      if (o.checkpointDir) {
        const saveStep = o.saveEvery && this.step % o.saveEvery === 0;
        // Before any write: a non-finite step since the last log stops the run (policy stop).
        if (saveStep || (improved && o.saveBest)) this.checkFinite(await this.readTotals(false), totalsFrom);
        if (saveStep) await this.saveStep();
        if (improved && o.saveBest) await this.save(join(o.checkpointDir, checkpointName('best')), { best_accuracy: this.bestAcc });
      }
      if (doEval && o.patience !== undefined && this.evalsSinceBest >= o.patience) {
        stoppedEarly = true;
        break;
      }
    }
    await gpuWait(Promise.all(this.inflight));
    this.inflight = [];
    device.check();
    const interrupted = this.step < o.maxSteps && !stoppedEarly ? (o.stop?.signal ?? null) : null;
    if (interrupted && o.checkpointDir && this.savedAt !== this.step) {
      const totals = await this.readTotals(true);
      this.checkFinite(totals, totalsFrom);
      this.skippedSteps += totals.bad;
      await this.saveStep();
    }
    bar?.finish(`loss ${lastLoss.toFixed(4)}`);
    this.bar = null;
    return { steps: this.step, losses, evals, bestAccuracy: this.bestAcc, stoppedEarly, skippedSteps: this.skippedSteps, interrupted, lastCheckpoint: this.lastCheckpoint };
  }

  /** Write the `step-N` checkpoint of the current step and prune old ones. */
  private async saveStep(): Promise<void> {
    const o = this.o;
    await this.save(join(o.checkpointDir!, checkpointName('step', this.step)));
    if (o.keepCheckpoints) pruneCheckpoints(o.checkpointDir!, STEP_PREFIX, o.keepCheckpoints);
  }

  /**
   * Write a checkpoint (model, optimizer moments, sidecar with step, data position, config). Throws a
   * NonFiniteError, writing nothing, when a weight or moment is NaN or ±Inf.
   */
  async save(dir: string, metadata: Record<string, unknown> = {}): Promise<void> {
    const { model } = this.o;
    const params = await model.stateDict();
    const opt = await this.optimizer.checkpoint();
    for (const [kind, map] of [['weight', params], ['first moment of', opt.m], ['second moment of', opt.v]] as const)
      for (const [name, x] of map) {
        const i = firstNonFinite(x);
        if (i >= 0)
          throw new NonFiniteError(
            `non-finite training by step ${this.step}: ${kind} ${name}[${i}] is ${x[i]}; refusing to write ${dir}; training stopped, ${lastCheckpointText(this.lastCheckpoint)}`,
            this.step,
            this.lastCheckpoint,
          );
      }
    saveCheckpoint(dir, {
      config: model.config,
      tied: model.config.tied,
      params,
      shapes: model.shapes(),
      optimizer: opt,
      step: this.step,
      data: { step: this.step, gradAccum: this.gradAccum, source: this.o.data.describe?.() ?? null },
      rng: { dropoutSeed: this.o.seed ?? 0 },
      train: this.o.trainConfig ?? null,
      metadata: {
        ...metadata,
        best_accuracy: Number.isFinite(this.bestAcc) ? this.bestAcc : null,
        evals_since_best: this.evalsSinceBest,
        skipped_steps: this.skippedSteps,
        ...(this.scaler ? { loss_scale: await this.scaler.read() } : {}),
      },
      hfConfig: toHfConfig(model.config),
    });
    if (basename(dir).startsWith(STEP_PREFIX)) {
      this.lastCheckpoint = dir;
      this.savedAt = this.step;
    }
  }

  /** Restore model weights, optimizer state and the step counter from a checkpoint directory. */
  restore(ck: LoadedCheckpoint): void {
    const { model } = this.o;
    const params = new Map(ck.params);
    if (model.config.tied) params.delete('lm_head.weight');
    model.params.loadAll(params);
    if (ck.optimizer) this.optimizer.restore(ck.optimizer as never);
    this.step = ck.step;
    const best = ck.metadata.best_accuracy;
    if (typeof best === 'number') this.bestAcc = best;
    const since = ck.metadata.evals_since_best;
    if (typeof since === 'number') this.evalsSinceBest = since;
    const skipped = ck.metadata.skipped_steps;
    if (typeof skipped === 'number') this.skippedSteps = skipped;
    // The loss scale and its counters continue (a checkpoint of an f32 run has none: the scale starts afresh).
    const ls = ck.metadata.loss_scale as LossScaleState | undefined;
    if (this.scaler && ls && typeof ls.scale === 'number') this.scaler.load(ls);
    // A run killed after writing best/ but before its next step-N: best/ holds a better accuracy than
    // the step checkpoint knew of, and the resumed run must not replace it with a worse model.
    const saved = this.o.checkpointDir ? savedBestAccuracy(this.o.checkpointDir) : null;
    if (saved !== null && saved > this.bestAcc) this.bestAcc = saved;
  }

  /** Resume from the latest `step-N` checkpoint in the run directory, if any. Returns its step. */
  resumeLatest(): number | null {
    if (!this.o.checkpointDir) return null;
    const last = latestCheckpoint(this.o.checkpointDir);
    if (!last) return null;
    this.restore(loadCheckpoint(last.path));
    this.lastCheckpoint = last.path;
    this.savedAt = this.step;
    return this.step;
  }

  destroy(): void {
    this.lossSum.dispose();
    this.stepLoss.dispose();
    this.optimizer.destroy();
    this.scaler?.destroy();
    // The engine outlives the trainer (experiment workers run many): back to the default precision.
    setPrecision(this.engine, 'f32');
  }
}

/** The loss scale's fields of a step log: the scale, and the steps skipped for an f16 overflow so far. */
async function scalerLog(scaler: LossScaler): Promise<Record<string, number>> {
  const st = await scaler.read();
  return { loss_scale: st.scale, overflow_skipped: st.skippedSteps, activation_overflow_steps: st.activationOverflowSteps };
}

/** The metrics.jsonl line of an evaluation: step, eval_loss, eval_accuracy, eval_tokens, and `eval_<key>` for any other key. */
export function evalRecord(step: number, r: EvalResult): Record<string, number> {
  const out: Record<string, number> = { step, eval_loss: r.loss, eval_accuracy: r.accuracy, eval_tokens: r.tokens };
  for (const [k, v] of Object.entries(r)) if (k !== 'loss' && k !== 'accuracy' && k !== 'tokens') out[`eval_${k}`] = v;
  return out;
}

/** The accuracy recorded in a run directory's complete `best/` checkpoint, or null. */
export function savedBestAccuracy(runDir: string): number | null {
  try {
    const v = readSidecar(join(runDir, checkpointName('best'))).metadata?.best_accuracy;
    return typeof v === 'number' ? v : null;
  } catch {
    return null;
  }
}
