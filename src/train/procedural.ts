/**
 * Stage 1 (spec §4): procedural pretraining of a GPT-2 on one procedural task. Ties the loader's epoch
 * structure (src/data/procedural/dataset.ts) to the trainer: optimizer step s with accumulation A
 * uses micro-batches s·A .. s·A+A-1 of the stream of epochs, so a resumed run sees the same batches.
 */
import type { Engine } from '../../engine/engine.ts';
import type { Batch, SampleSource } from '../data/procedural/batch.ts';
import { batchFromIndices } from '../data/procedural/batch.ts';
import { ProceduralLoader } from '../data/procedural/dataset.ts';
import type { TaskName } from '../data/procedural/registry.ts';
import { GPT } from '../model/gpt.ts';
import {
  type ProceduralConfig,
  proceduralModelConfig,
  proceduralRunName,
  proceduralScheduleSpec,
  proceduralTaskConfig,
  proceduralTotalSteps,
} from './config.ts';
import { assertProceduralFits } from './fits.ts';
import { makeSchedule } from './schedule.ts';
import { Trainer, type BatchSource, type TrainerOptions, type TrainResult } from './trainer.ts';
import { join } from 'node:path';

/** Micro-batch g of the concatenated epochs of a loader. */
export function loaderSource(loader: ProceduralLoader, gradAccum: number): BatchSource {
  let cached: { epoch: number; source: SampleSource; order: Uint32Array } | null = null;
  return {
    batch(step: number, micro: number): Batch {
      const g = step * gradAccum + micro;
      const epoch = Math.floor(g / loader.stepsPerEpoch);
      const within = g % loader.stepsPerEpoch;
      if (!cached || cached.epoch !== epoch) cached = { epoch, source: loader.trainSource(epoch), order: loader.trainOrder(epoch) };
      const B = loader.batchSize;
      return batchFromIndices(cached.source, cached.order.subarray(within * B, (within + 1) * B), loader.contextLength);
    },
    describe: () => ({ task: loader.name, batchSize: loader.batchSize, stepsPerEpoch: loader.stepsPerEpoch, gradAccum }),
  };
}

export interface ProceduralRun {
  runDir: string;
  /** The validation batches (spec §4: 40 sequences for Dyck, batch × 10 otherwise). */
  validation: Batch[];
  result: TrainResult;
  model: GPT;
  trainer: Trainer;
}

/** Build model, data and trainer from a procedural config and train (resuming if asked). */
export async function runProcedural(engine: Engine, c: ProceduralConfig, opts: { progress?: boolean; log?: (s: string) => void; onLog?: TrainerOptions['onLog']; onEval?: TrainerOptions['onEval'] } = {}): Promise<ProceduralRun> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const task = c.task as TaskName;
  const taskConfig = proceduralTaskConfig(c);
  assertProceduralFits(engine, c);
  const loader = new ProceduralLoader(task, taskConfig as never, { batchSize: c.batch_size, stepsPerEpoch: c.steps_per_epoch * c.gradient_accumulation_steps });
  const modelConfig = proceduralModelConfig(c);
  const total = proceduralTotalSteps(c);
  const maxSteps = Math.min(total, c.max_steps ?? total);
  const runDir = join(c.save_dir, proceduralRunName(c));
  const model = GPT.create(engine, modelConfig, { seed: c.seed, decay: c.weight_decay_rule as never });
  const schedule = makeSchedule(proceduralScheduleSpec(c));
  const validation = loader.validationBatches(0);
  log(
    `procedural pretraining: task ${task}, model ${c.gpt2_size} (${model.params.numel.toLocaleString()} parameters, vocab ${modelConfig.vocabSize}, context ${modelConfig.nPositions}), ` +
      `batch ${c.batch_size}×${c.gradient_accumulation_steps}, ${maxSteps} steps, lr ${c.lr} ${c.lr_schedule}, run dir ${runDir}`,
  );
  const trainer = new Trainer({
    model,
    data: loaderSource(loader, c.gradient_accumulation_steps),
    maxSteps,
    lr: schedule,
    optimizer: { weightDecay: c.weight_decay, maxGradNorm: c.max_grad_norm || null, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    gradAccum: c.gradient_accumulation_steps,
    seed: c.seed,
    logEvery: Math.max(1, Math.min(50, c.save_every_steps)),
    evalEvery: c.save_every_steps,
    evalBatches: () => validation,
    patience: c.patience || undefined,
    metricsPath: join(runDir, 'metrics.jsonl'),
    checkpointDir: runDir,
    saveEvery: c.save_every_steps,
    keepCheckpoints: c.save_total_limit || undefined,
    saveBest: true,
    progress: opts.progress,
    trainConfig: c,
    onLog: opts.onLog,
    onEval: opts.onEval,
  });
  if (c.resume) {
    const from = trainer.resumeLatest();
    log(from === null ? 'resume: no checkpoint yet, starting fresh' : `resume: continuing from step ${from}`);
  }
  const result = await trainer.run();
  return { runDir, validation, result, model, trainer };
}

/** Dyck and Dyck-shuffle: token ids k..2k-1 are closing brackets (spec §2.7). */
export function isDyckTask(task: string): boolean {
  return task === 'dyck' || task === 'dyck_shuffle';
}

/**
 * The batch with its loss mask restricted to positions whose TARGET is a closing bracket (k ≤ t < 2k):
 * in a Dyck word the closer is fully determined by the prefix, so a model that learned the language
 * predicts it (spec §14, "closing accuracy").
 */
export function closingBatch(b: Batch, k: number): Batch {
  const lossMask = new Float32Array(b.lossMask.length);
  let n = 0;
  for (let i = 0; i < lossMask.length; i++) {
    const t = b.targets[i]!;
    if (b.lossMask[i]! > 0 && t >= k && t < 2 * k) {
      lossMask[i] = 1;
      n++;
    }
  }
  return { ...b, lossMask, lossTokens: n };
}

export interface Stage1Gate {
  /** Validation token accuracy (all loss positions). */
  accuracy: number;
  /** Dyck / Dyck-shuffle: accuracy on closing-bracket targets; null for other tasks. */
  closingAccuracy: number | null;
  /** closing accuracy (Dyck) or token accuracy (others) ≥ threshold. */
  learned: boolean;
}

/** Whether stage 1 learned its language: evaluates the trained model on the validation batches. */
export async function stage1Gate(trainer: Trainer, c: ProceduralConfig, validation: readonly Batch[], threshold: number): Promise<Stage1Gate> {
  const all = await trainer.evaluate(validation);
  let closing: number | null = null;
  if (isDyckTask(c.task)) closing = (await trainer.evaluate(validation.map((b) => closingBatch(b, c.k)))).accuracy;
  return { accuracy: all.accuracy, closingAccuracy: closing, learned: (closing ?? all.accuracy) >= threshold };
}
