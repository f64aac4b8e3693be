/**
 * Stage 2 (spec §6): train a downstream model on an algorithmic task (needle, additions,
 * multiplication) from an ALGORITHMIC_SCHEMA config, fresh or warmed up from a stage-1 checkpoint.
 *
 *   model      the task's defaults (src/data/tasks), untied, dropout 0, no weight decay on biases and
 *              LayerNorm ('hf'); HF init with the run's seed, then §5 transfer (`transferInit`) from
 *              `pretrained_model_path`, or a weight mixture (`transferMixture`) of two checkpoints
 *   data       DownstreamStream: the infinite training stream (seed 42 [quirk]) minus the test set
 *   schedule   HF: linear warmup, then cosine to 0 at max_steps (lr 1e-3, wd 0.001, clip 1.0)
 *   evaluation accuracy at wanted positions over the fixed test set (eval_size sequences, uploaded in
 *              batches of per_device_eval_batch_size) at step 0 and every eval_steps
 *   checkpoints `step-N/` in the run directory every save_steps (rounded up to a multiple of eval_steps,
 *              so a resumed run's loss curve equals the uninterrupted one); `resume` continues from the
 *              latest one bitwise
 *
 * Curves are rebuilt from the run's metrics.jsonl, which a resume first truncates to the checkpoint's
 * step, so a killed-and-resumed run reports exactly what an uninterrupted run reports.
 *
 * The run directory follows src/train/rundir.ts: locked while the run writes it, an existing run
 * refused without `resume` or `overwrite`, and a resume checked against the checkpoint's stored
 * config (ALGORITHMIC_RESUME_MAY_CHANGE lists the keys that may differ).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../io/checkpoint.ts';
import type { Engine } from '../../engine/engine.ts';
import type { Precision } from '../../engine/precision.ts';
import type { Batch } from '../data/procedural/batch.ts';
import { DownstreamStream, makeTestSet, toBatch } from '../data/tasks/harness.ts';
import { createDownstreamTask, type DownstreamTask } from '../data/tasks/index.ts';
import { GPT } from '../model/gpt.ts';
import { JsonlWriter, readJsonl } from '../util/jsonl.ts';
import { ALGORITHMIC_RESUME_MAY_CHANGE, type AlgorithmicConfig, algorithmicModelConfig, algorithmicScheduleSpec } from './config.ts';
import { METRICS_FILE, openStageRunDir, type StageOptions, truncateMetrics } from './rundir.ts';
import { makeSchedule } from './schedule.ts';
import { Trainer, type EvalResult, type StepLog } from './trainer.ts';
import { type Component, type EmbInit, parseWeightScales, scaleWeights, toStateDict, transferInit, transferMixture, type TransferResult } from './transfer.ts';
import { assertDownstreamFits } from './fits.ts';

export type MixtureOrigin = 'attn' | 'ffn' | 'random';

/** A weight mixture (§5, page): attention from one checkpoint, MLP from another. */
export interface DownstreamMixture {
  attn: string;
  ffn: string;
  layerNorm: MixtureOrigin;
  positions: MixtureOrigin;
  tokenEmbeddings: MixtureOrigin;
}

export interface DownstreamOptions extends StageOptions {
  /** Initialise from a weight mixture instead of `pretrained_model_path`. */
  mixture?: DownstreamMixture | null;
}

export interface DownstreamResult {
  task: DownstreamTask;
  steps: number;
  /** Test accuracy at the last evaluation. */
  finalAccuracy: number;
  /** [step, test accuracy], step 0 included. */
  curve: [number, number][];
  /** [step, mean training loss since the previous entry]. */
  lossCurve: [number, number][];
  /** [step, test loss]. */
  evalLossCurve: [number, number][];
  /** The checkpoint step a resume continued from (null: fresh start). */
  resumedFrom: number | null;
  parameters: number;
  /** Where each parameter's initial values came from (null without transfer). */
  transfer: TransferResult | null;
}


/** The §5 transfer or weight mixture a run starts from (null: fresh HF initialisation), then `transfer_scale`. */
export function initialWeights(c: AlgorithmicConfig, opts: DownstreamOptions): TransferResult | null {
  const r = transferredWeights(c, opts);
  const scales = parseWeightScales(c.transfer_scale as string[]);
  if (r && scales.length) scaleWeights(r, scales);
  return r;
}

function transferredWeights(c: AlgorithmicConfig, opts: DownstreamOptions): TransferResult | null {
  const target = algorithmicModelConfig(c);
  const train = c.weights_to_be_trained as Component[];
  if (opts.mixture) {
    const m = opts.mixture;
    const load = (dir: string) => {
      const ck = loadCheckpoint(dir);
      return toStateDict(ck.params, ck.shapes);
    };
    const parts = [
      { source: load(m.attn), components: ['attn'] as Component[], label: 'attn' },
      { source: load(m.ffn), components: ['ffn'] as Component[], label: 'ffn' },
    ];
    const idx = (o: MixtureOrigin): 'random' | number => (o === 'random' ? 'random' : o === 'attn' ? 0 : 1);
    const te = idx(m.tokenEmbeddings);
    return transferMixture(target, {
      seed: c.seed,
      parts,
      layerNorm: idx(m.layerNorm),
      positions: idx(m.positions),
      tokenEmbeddings: te === 'random' ? 'random' : { from: te, init: c.embedding_init_strategy as EmbInit },
      train,
    });
  }
  const transfer = c.weights_to_be_transferred as Component[];
  if (!c.pretrained_model_path || transfer.length === 0) return null;
  const ck = loadCheckpoint(c.pretrained_model_path);
  const layers = (c.transfer_layers as string[]).map(Number);
  return transferInit(toStateDict(ck.params, ck.shapes), target, {
    seed: c.seed,
    transfer,
    embInit: c.embedding_init_strategy as EmbInit,
    train,
    ...(layers.length ? { layers } : {}),
  });
}

/** The curves of a run directory's metrics.jsonl. */
export function readCurves(path: string): { curve: [number, number][]; lossCurve: [number, number][]; evalLossCurve: [number, number][] } {
  const curve: [number, number][] = [];
  const lossCurve: [number, number][] = [];
  const evalLossCurve: [number, number][] = [];
  if (!existsSync(path)) return { curve, lossCurve, evalLossCurve };
  // A malformed line throws a JsonlError naming the file and the line; a last line cut by a kill is dropped.
  for (const { value } of readJsonl(path, { skipBadLast: true })) {
    const r = value as Record<string, number>;
    if (typeof r.eval_accuracy === 'number') {
      curve.push([r.step!, r.eval_accuracy]);
      evalLossCurve.push([r.step!, r.eval_loss!]);
    } else if (typeof r.loss === 'number') lossCurve.push([r.step!, r.loss]);
  }
  return { curve, lossCurve, evalLossCurve };
}

/** Train (or resume) one downstream run. The caller owns `engine`. */
export async function runDownstream(engine: Engine, c: AlgorithmicConfig, opts: DownstreamOptions): Promise<DownstreamResult> {
  const log = opts.log ?? (() => undefined);
  const task = createDownstreamTask(c.task);
  const modelConfig = algorithmicModelConfig(c);
  if (task.seqLen > modelConfig.nPositions) throw new Error(`${c.task}: sequences of ${task.seqLen} tokens exceed n_positions ${modelConfig.nPositions}`);
  if (task.vocabSize > modelConfig.vocabSize) throw new Error(`${c.task}: vocabulary ${task.vocabSize} exceeds vocab_size ${modelConfig.vocabSize}`);

  const opened = openStageRunDir(opts, c as unknown as Record<string, unknown>, { mayChange: ALGORITHMIC_RESUME_MAY_CHANGE, maxSteps: c.max_steps, maxStepsKey: 'max_steps' }, log);
  try {
    assertDownstreamFits(engine, c);
    return await trainDownstream(engine, c, opts, task, modelConfig, opened.resumeFrom?.path ?? null, log);
  } finally {
    opened.release();
  }
}

async function trainDownstream(
  engine: Engine,
  c: AlgorithmicConfig,
  opts: DownstreamOptions,
  task: DownstreamTask,
  modelConfig: ReturnType<typeof algorithmicModelConfig>,
  resumePath: string | null,
  log: (s: string) => void,
): Promise<DownstreamResult> {
  const test = makeTestSet(task, c.seed, c.eval_size);
  const evalBatches: Batch[] = [];
  for (let i = 0; i < test.length; i += c.per_device_eval_batch_size) evalBatches.push(toBatch(task, test.slice(i, i + c.per_device_eval_batch_size)));
  const stream = new DownstreamStream(task, test, { batchSize: c.per_device_train_batch_size });
  let cached: { step: number; batch: Batch } | null = null;
  const data = {
    batch(step: number): Batch {
      if (cached?.step !== step) cached = { step, batch: stream.batch(step) };
      return cached.batch;
    },
    describe: () => stream.describe(),
  };

  const transfer = initialWeights(c, opts);
  const model = GPT.create(engine, modelConfig, {
    seed: c.seed,
    weights: transfer ? new Map([...transfer.state].map(([n, t]) => [n, t.data])) : undefined,
    decay: 'hf',
    frozen: transfer?.frozen,
  });
  const metricsPath = join(opts.runDir, METRICS_FILE);
  const evalEvery = c.eval_steps;
  const saveEvery = Math.ceil(c.save_steps / evalEvery) * evalEvery;
  const trainer = new Trainer({
    model,
    data,
    maxSteps: c.max_steps,
    lr: makeSchedule(algorithmicScheduleSpec(c)),
    optimizer: { weightDecay: c.weight_decay, maxGradNorm: c.max_grad_norm || null, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    precision: c.precision as Precision,
    seed: c.seed,
    logEvery: evalEvery,
    evalEvery,
    evalBatches: () => evalBatches,
    metricsPath,
    checkpointDir: opts.runDir,
    saveEvery,
    keepCheckpoints: c.save_total_limit || undefined,
    progress: opts.progress ?? false,
    trainConfig: c,
    onLog: opts.onLog,
    onEval: opts.onEval,
  });
  try {
    let resumedFrom: number | null = null;
    if (resumePath) {
      trainer.restore(loadCheckpoint(resumePath));
      resumedFrom = trainer.step;
    }
    if (resumedFrom === null) {
      rmSync(metricsPath, { force: true });
      const r0 = await trainer.evaluate(evalBatches);
      new JsonlWriter(metricsPath).write({ step: 0, eval_loss: r0.loss, eval_accuracy: r0.accuracy, eval_tokens: r0.tokens });
      opts.onEval?.(0, r0);
    } else {
      truncateMetrics(metricsPath, resumedFrom);
      log(`resumed ${opts.runDir} from step ${resumedFrom}`);
    }
    const r = await trainer.run();
    const curves = readCurves(metricsPath);
    const last = curves.curve[curves.curve.length - 1];
    return {
      task,
      steps: r.steps,
      finalAccuracy: last ? last[1] : NaN,
      curve: curves.curve,
      lossCurve: curves.lossCurve,
      evalLossCurve: curves.evalLossCurve,
      resumedFrom,
      parameters: model.params.numel,
      transfer,
    };
  } finally {
    trainer.destroy();
    model.destroy();
  }
}
