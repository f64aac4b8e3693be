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
  PROCEDURAL_RESUME_MAY_CHANGE,
  type ProceduralConfig,
  proceduralModelConfig,
  proceduralRunName,
  proceduralScheduleSpec,
  proceduralTaskConfig,
  proceduralTotalSteps,
} from './config.ts';
import { assertProceduralFits } from './fits.ts';
import { makeSchedule } from './schedule.ts';
import { Trainer, type BatchSource, type NonFinitePolicy, type StopRequest, type TrainerOptions, type TrainResult } from './trainer.ts';
import type { Precision } from '../../engine/precision.ts';
import { latestCheckpoint, loadCheckpoint } from '../io/checkpoint.ts';
import { METRICS_FILE, openRunDir, type OpenRunDir, truncateMetrics } from './rundir.ts';
import { existsSync, readdirSync } from 'node:fs';
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

/** The optimizer steps a procedural config trains: epochs·steps_per_epoch, capped by max_steps. */
export function proceduralMaxSteps(c: ProceduralConfig): number {
  const total = proceduralTotalSteps(c);
  return Math.min(total, c.max_steps ?? total);
}

/** The run directory of a procedural config: save_dir/run name. */
export function proceduralRunDir(c: ProceduralConfig): string {
  return join(c.save_dir, proceduralRunName(c));
}

/**
 * Takes the run directory of a procedural config for this process (src/train/rundir.ts): locks it,
 * refuses an existing run without resume/overwrite, clears it for overwrite, and checks a resume
 * against the checkpoint's stored config. Touches no GPU, so a command can refuse before starting
 * the device. The caller releases `lock`.
 */
export function openProceduralRun(c: ProceduralConfig, log: (s: string) => void): OpenRunDir {
  const runDir = proceduralRunDir(c);
  const opened = openRunDir(runDir, {
    resume: c.resume,
    overwrite: c.overwrite,
    what: 'save_dir or run_name',
    config: c as unknown as Record<string, unknown>,
    log,
    rules: {
      mayChange: PROCEDURAL_RESUME_MAY_CHANGE,
      maxSteps: proceduralMaxSteps(c),
      maxStepsKey: 'max_steps',
      derived: (stored) => {
        // For the Dyck tasks max_steps is also the schedule's horizon: it may change only under a constant schedule.
        if (c.lr_schedule === 'constant') return [];
        try {
          const before = proceduralTotalSteps(stored as unknown as ProceduralConfig);
          const after = proceduralTotalSteps(c);
          return before === after ? [] : [`max_steps: ${String(stored.max_steps)} → ${String(c.max_steps)} (for ${c.task} it is the ${c.lr_schedule} schedule's horizon: ${before} → ${after} steps)`];
        } catch {
          return [];
        }
      },
    },
  });
  if (c.resume && !opened.resumeFrom && c.run_name === null) {
    // The default run name includes max_steps: a resume with another max_steps looks in another directory.
    const prefix = `${c.task}-${c.seq_length}-${c.gpt2_size}-`;
    const others = existsSync(c.save_dir)
      ? readdirSync(c.save_dir).filter((n) => n.startsWith(prefix) && /^\d+steps$/.test(n.slice(prefix.length)) && join(c.save_dir, n) !== runDir && latestCheckpoint(join(c.save_dir, n)))
      : [];
    if (others.length) {
      log(
        `note: ${others.map((n) => join(c.save_dir, n)).join(', ')} holds checkpoints of this task and size with another max_steps; ` +
          'the default run name includes max_steps, so to resume one of them with a new max_steps, pass its directory name as --run_name',
      );
    }
  }
  return opened;
}

/**
 * Build model, data and trainer from a procedural config and train (resuming if asked). Takes the
 * run directory (`openProceduralRun`) unless the caller passes one it opened, and releases what it
 * took when it returns or throws.
 */
export async function runProcedural(
  engine: Engine,
  c: ProceduralConfig,
  opts: { progress?: boolean; log?: (s: string) => void; onLog?: TrainerOptions['onLog']; onEval?: TrainerOptions['onEval']; opened?: OpenRunDir; stop?: StopRequest } = {},
): Promise<ProceduralRun> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const opened = opts.opened ?? openProceduralRun(c, log);
  try {
    return await trainProcedural(engine, c, opened, opts, log);
  } finally {
    if (!opts.opened) opened.release();
  }
}

async function trainProcedural(
  engine: Engine,
  c: ProceduralConfig,
  opened: OpenRunDir,
  opts: { progress?: boolean; onLog?: TrainerOptions['onLog']; onEval?: TrainerOptions['onEval']; stop?: StopRequest },
  log: (s: string) => void,
): Promise<ProceduralRun> {
  const task = c.task as TaskName;
  const taskConfig = proceduralTaskConfig(c);
  assertProceduralFits(engine, c);
  const loader = new ProceduralLoader(task, taskConfig as never, { batchSize: c.batch_size, stepsPerEpoch: c.steps_per_epoch * c.gradient_accumulation_steps });
  const modelConfig = proceduralModelConfig(c);
  const maxSteps = proceduralMaxSteps(c);
  const runDir = opened.runDir;
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
    nonFinite: c.nonfinite as NonFinitePolicy,
    precision: c.precision as Precision,
    stop: opts.stop,
    gradAccum: c.gradient_accumulation_steps,
    seed: c.seed,
    logEvery: Math.max(1, Math.min(50, c.save_every_steps)),
    evalEvery: c.save_every_steps,
    evalBatches: () => validation,
    patience: c.patience || undefined,
    metricsPath: join(runDir, METRICS_FILE),
    checkpointDir: runDir,
    saveEvery: c.save_every_steps,
    keepCheckpoints: c.save_total_limit || undefined,
    saveBest: true,
    progress: opts.progress,
    trainConfig: c,
    onLog: opts.onLog,
    onEval: opts.onEval,
  });
  try {
    if (c.resume) {
      const from = opened.resumeFrom;
      if (from) {
        trainer.restore(loadCheckpoint(from.path));
        truncateMetrics(join(runDir, METRICS_FILE), from.step);
      }
      log(!from ? 'resume: no checkpoint yet, starting fresh' : opened.complete ? `resume: ${from.name} already reached max_steps ${maxSteps}; nothing to train` : `resume: continuing from step ${from.step}`);
    }
    const result = await trainer.run();
    return { runDir, validation, result, model, trainer };
  } catch (e) {
    trainer.destroy();
    model.destroy();
    throw e;
  }
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

/** Dyck and Dyck-shuffle: the trained model's accuracy on closing-bracket targets of the validation batches; null for other tasks. */
export async function closingAccuracy(trainer: Trainer, c: ProceduralConfig, validation: readonly Batch[]): Promise<number | null> {
  if (!isDyckTask(c.task)) return null;
  return (await trainer.evaluate(validation.map((b) => closingBatch(b, c.k)))).accuracy;
}

/** Whether stage 1 learned its language: evaluates the trained model on the validation batches. */
export async function stage1Gate(trainer: Trainer, c: ProceduralConfig, validation: readonly Batch[], threshold: number): Promise<Stage1Gate> {
  const all = await trainer.evaluate(validation);
  const closing = await closingAccuracy(trainer, c, validation);
  return { accuracy: all.accuracy, closingAccuracy: closing, learned: (closing ?? all.accuracy) >= threshold };
}
