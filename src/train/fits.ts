/**
 * The size check at the start of a run: estimates what training the model takes
 * (src/model/footprint.ts) and refuses, before anything is allocated, a run that cannot fit this
 * adapter's buffer limits or this machine's memory.
 */
import { totalmem } from 'node:os';
import type { Engine } from '../../engine/engine.ts';
import type { GPTConfig } from '../model/config.ts';
import { describeRun, fitProblem, trainingFootprint } from '../model/footprint.ts';
import { ConfigError } from './config.ts';

/** Throws a ConfigError with the numbers and a hint when training `cfg` on micro-batches of `batch` sequences cannot fit. */
export function assertTrainingFits(engine: Engine, cfg: GPTConfig, batch: number, seqLen: number, hint?: string): void {
  const fp = trainingFootprint(cfg, { batch, seqLen });
  const problem = fitProblem(fp, engine.device.limits, { hostBytes: totalmem(), software: engine.device.info.software }, describeRun(cfg, batch), hint);
  if (problem) throw new ConfigError(problem);
}
