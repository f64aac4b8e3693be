/**
 * The size check at the start of a run: estimates what training the model takes
 * (src/model/footprint.ts) and refuses, before anything is allocated, a run that cannot fit this
 * adapter's buffer limits or this machine's memory.
 */
import { totalmem } from 'node:os';
import type { Engine } from '../../engine/engine.ts';
import type { Precision } from '../../engine/precision.ts';
import { createDownstreamTask } from '../data/tasks/index.ts';
import type { GPTConfig } from '../model/config.ts';
import { describeRun, fitProblem, trainingFootprint } from '../model/footprint.ts';
import { type AlgorithmicConfig, algorithmicModelConfig, ConfigError, type ProceduralConfig, proceduralModelConfig } from './config.ts';

/** Throws a ConfigError with the numbers and a hint when training `cfg` on micro-batches of `batch` sequences cannot fit. */
export function assertTrainingFits(engine: Engine, cfg: GPTConfig, batch: number, seqLen: number, hint?: string, precision: Precision = 'f32'): void {
  const fp = trainingFootprint(cfg, { batch, seqLen, precision });
  const problem = fitProblem(fp, engine.device.limits, { hostBytes: totalmem(), software: engine.device.info.software }, describeRun(cfg, batch), hint);
  if (problem) throw new ConfigError(problem);
}

/** Stage 1: the procedural model on micro-batches of batch_size sequences of its full context. */
export function assertProceduralFits(engine: Engine, c: ProceduralConfig): void {
  const cfg = proceduralModelConfig(c);
  assertTrainingFits(engine, cfg, c.batch_size, cfg.nPositions, 'lower batch_size (raise gradient_accumulation_steps to keep the effective batch), seq_length or gpt2_size', c.precision as Precision);
}

/** Stage 2: the downstream model on the larger of its training and evaluation batches of the task's rows. */
export function assertDownstreamFits(engine: Engine, c: AlgorithmicConfig): void {
  const seqLen = Math.min(createDownstreamTask(c.task).seqLen, c.n_positions);
  const batch = Math.max(c.per_device_train_batch_size, c.per_device_eval_batch_size);
  assertTrainingFits(engine, algorithmicModelConfig(c), batch, seqLen, 'lower per_device_train_batch_size / per_device_eval_batch_size, or n_layer / n_embd', c.precision as Precision);
}
