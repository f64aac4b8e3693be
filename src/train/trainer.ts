/**
 * The training loop: next-token loss on loss-masked positions, AdamW with on-device clipping, LR
 * schedules, gradient accumulation, evaluation, early stopping, periodic and best checkpoints,
 * metrics as JSONL and a progress bar.
 *
 * One optimizer step = upload every micro-batch, then record (zero grads → forward/backward per
 * micro-batch → clip + AdamW) and submit once. The loss and gradient norm stay on the device and are
 * read back only at log steps. At most two steps are in flight.
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
import type { Tensor } from '../../engine/tensor.ts';
import type { Batch } from '../data/procedural/batch.ts';
import { toHfConfig } from '../model/config.ts';
import type { GPT } from '../model/gpt.ts';
import { JsonlWriter } from '../util/jsonl.ts';
import { Progress } from '../util/progress.ts';
import { join } from 'node:path';
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
}

export class Trainer {
  readonly engine: Engine;
  readonly optimizer: AdamW;
  /** Optimizer steps completed. */
  step = 0;
  private lossSum: Tensor;
  private lossCount = 0;
  private inflight: Promise<unknown>[] = [];
  private metrics: JsonlWriter | null;
  private bestAcc = -Infinity;
  private evalsSinceBest = 0;

  constructor(readonly o: TrainerOptions) {
    this.engine = o.model.engine;
    this.optimizer = new AdamW(o.model.params, o.optimizer);
    this.lossSum = this.engine.zeros([1], 'f32', 'loss_sum').keep();
    this.metrics = o.metricsPath ? new JsonlWriter(o.metricsPath) : null;
  }

  get gradAccum(): number {
    return this.o.gradAccum ?? 1;
  }

  /** Record and submit one optimizer step (no readback). */
  recordStep(): void {
    const { model } = this.o;
    const e = this.engine;
    const A = this.gradAccum;
    const s = this.step;
    const batches = Array.from({ length: A }, (_, m) => this.o.data.batch(s, m));
    e.tidy(() => {
      // Uploads first: writeBuffer is ordered before the step's single submit.
      const dev = batches.map((b) => model.uploadBatch(b));
      model.params.zeroGrad();
      dev.forEach((b, m) => {
        e.startGrad();
        const { loss } = model.loss(b, { train: true, seed: this.o.seed ?? 0, step: s * A + m });
        e.noGrad(() => accumulate(this.lossSum, loss, 1 / A));
        backward(A === 1 ? loss : scale(loss, 1 / A));
      });
      this.optimizer.step(this.o.lr(s));
    });
    e.flush();
    this.lossCount++;
    this.step++;
  }

  /** Keep at most two steps in flight. */
  private async throttle(): Promise<void> {
    this.inflight.push(this.engine.gpu.queue.onSubmittedWorkDone());
    while (this.inflight.length > 2) await gpuWait(this.inflight.shift()!);
  }

  /** Mean loss since the last call (reads back), and resets the accumulator. */
  async takeLoss(): Promise<number> {
    const v = (await this.lossSum.read())[0]!;
    const mean = this.lossCount ? v / this.lossCount : NaN;
    this.engine.clear(this.lossSum);
    this.lossCount = 0;
    return mean;
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

  /** Train until maxSteps (or early stopping). */
  async run(): Promise<TrainResult> {
    const o = this.o;
    const logEvery = o.logEvery ?? 10;
    const losses: TrainResult['losses'] = [];
    const evals: TrainResult['evals'] = [];
    const bar = o.progress === false ? null : new Progress({ label: 'train', total: o.maxSteps, unit: 'step' });
    let tLast = performance.now();
    let stepsSince = 0;
    let tokensSince = 0;
    let stoppedEarly = false;
    let lastLoss = NaN;
    while (this.step < o.maxSteps) {
      const s = this.step;
      this.recordStep();
      stepsSince++;
      tokensSince += this.tokensPerStep(s);
      await this.throttle();
      const isLast = this.step === o.maxSteps;
      if (this.step % logEvery === 0 || isLast) {
        const loss = await this.takeLoss();
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
        };
        tLast = now;
        stepsSince = 0;
        tokensSince = 0;
        lastLoss = loss;
        losses.push({ step: this.step, loss });
        this.metrics?.write({ ...rec, time: new Date().toISOString() });
        o.onLog?.(rec);
      }
      bar?.update(this.step, `loss ${lastLoss.toFixed(4)}`);
      const doEval = o.evalBatches && o.evalEvery && (this.step % o.evalEvery === 0 || isLast);
      let improved = false;
      if (doEval) {
        const r = await this.evaluate(o.evalBatches!());
        evals.push({ step: this.step, ...r });
        this.metrics?.write({ step: this.step, eval_loss: r.loss, eval_accuracy: r.accuracy, eval_tokens: r.tokens });
        o.onEval?.(this.step, r);
        if (r.accuracy > this.bestAcc) {
          this.bestAcc = r.accuracy;
          this.evalsSinceBest = 0;
          improved = true;
        } else this.evalsSinceBest++;
      }
      if (o.checkpointDir) {
        if (o.saveEvery && this.step % o.saveEvery === 0) {
          await this.save(join(o.checkpointDir, checkpointName('step', this.step)));
          if (o.keepCheckpoints) pruneCheckpoints(o.checkpointDir, STEP_PREFIX, o.keepCheckpoints);
        }
        if (improved && o.saveBest) await this.save(join(o.checkpointDir, checkpointName('best')), { best_accuracy: this.bestAcc });
      }
      if (doEval && o.patience !== undefined && this.evalsSinceBest >= o.patience) {
        stoppedEarly = true;
        break;
      }
    }
    await gpuWait(Promise.all(this.inflight));
    this.inflight = [];
    bar?.finish(`loss ${lastLoss.toFixed(4)}`);
    return { steps: this.step, losses, evals, bestAccuracy: this.bestAcc, stoppedEarly };
  }

  private tokensPerStep(step: number): number {
    // Supervised tokens are what the loss averages over; tokens/s counts all positions processed.
    let n = 0;
    for (let m = 0; m < this.gradAccum; m++) {
      const b = this.o.data.batch(step, m);
      n += b.batch * b.seqLen;
    }
    return n;
  }

  /** Write a checkpoint (model, optimizer moments, sidecar with step, data position, config). */
  async save(dir: string, metadata: Record<string, unknown> = {}): Promise<void> {
    const { model } = this.o;
    const params = await model.stateDict();
    const opt = await this.optimizer.checkpoint();
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
      metadata: { ...metadata, best_accuracy: Number.isFinite(this.bestAcc) ? this.bestAcc : null, evals_since_best: this.evalsSinceBest },
      hfConfig: toHfConfig(model.config),
    });
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
    return this.step;
  }

  destroy(): void {
    this.lossSum.dispose();
    this.optimizer.destroy();
  }
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
