/**
 * Stage 2 of several runs at once: the seeds of one experiment arm (configs equal but for `seed` and
 * `pretrained_model_path`) trained as one StackedGPT (src/model/stacked.ts) in one set of dispatches,
 * each run keeping everything it has when trained alone (src/train/downstream.ts):
 *
 *   its run directory (locked), its test set, data stream and §5 transfer, its metrics.jsonl with the
 *   same records (training loss and gradient norm of that model, evaluations at step 0 and every
 *   eval_steps), its `step-N` checkpoints in the single-run format (so a run can be resumed alone, or
 *   serve as a stage-1 checkpoint), and its DownstreamResult.
 *
 * The optimizer is AdamW over the stacked store with per-model clipping (`groups`); one schedule
 * serves all (the configs agree on it). The values equal the single runs' up to float32 summation
 * order (test/train/stacked.test.ts), not bitwise: a stacked run and a single run of the same seed give
 * the same curves to a few decimals, and a resumed stacked run continues its own curves bitwise.
 *
 * Refused with a StackError (the caller runs the seeds one by one instead): configs that differ in
 * anything else, weight mixtures, dropout, runs whose latest checkpoints are at different steps,
 * transfers that freeze different parameters, or a stack that does not fit the adapter where one run
 * does. A non-finite loss or gradient norm of any model stops all of them at the next log step
 * (NonFiniteError naming the run); alone, policy `stop` stops at the next log step as well.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { backward } from '../../engine/autograd.ts';
import type { Engine } from '../../engine/engine.ts';
import { accumulate } from '../../engine/ops/elementwise.ts';
import { AdamW } from '../../engine/optim.ts';
import { setPrecision } from '../../engine/precision.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { gpuWait } from '../../engine/wait.ts';
import type { Batch } from '../data/procedural/batch.ts';
import { DownstreamStream, makeTestSet, toBatch } from '../data/tasks/harness.ts';
import { createDownstreamTask } from '../data/tasks/index.ts';
import { checkpointName, loadCheckpoint, pruneCheckpoints, saveCheckpoint, STEP_PREFIX } from '../io/checkpoint.ts';
import { toHfConfig } from '../model/config.ts';
import { paramSpecs } from '../model/hf_names.ts';
import { modelSlice, StackedGPT } from '../model/stacked.ts';
import { JsonlWriter } from '../util/jsonl.ts';
import { ALGORITHMIC_RESUME_MAY_CHANGE, type AlgorithmicConfig, algorithmicModelConfig, algorithmicScheduleSpec } from './config.ts';
import { type DownstreamOptions, type DownstreamResult, initialWeights, readCurves } from './downstream.ts';
import { assertDownstreamFits } from './fits.ts';
import { METRICS_FILE, type OpenRunDir, openStageRunDir, truncateMetrics } from './rundir.ts';
import { makeSchedule } from './schedule.ts';
import { evalRecord, type EvalResult, lastCheckpointText, NonFiniteError, type StepLog } from './trainer.ts';

/** These runs cannot be stacked (the message says why); run them one by one. */
export class StackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackError';
  }
}

/** Keys in which the configs of stacked runs may differ. */
export const STACK_MAY_DIFFER = ['seed', 'pretrained_model_path'] as const;

export interface StackedRun {
  config: AlgorithmicConfig;
  opts: DownstreamOptions;
}

/** Why `configs` cannot be stacked, or null. */
export function stackRefusal(configs: readonly AlgorithmicConfig[]): string | null {
  if (configs.length === 0) return 'no runs';
  const strip = (c: AlgorithmicConfig) => {
    const o: Record<string, unknown> = { ...c };
    for (const k of STACK_MAY_DIFFER) delete o[k];
    return o;
  };
  const first = strip(configs[0]!);
  for (const [i, c] of configs.entries()) {
    const o = strip(c);
    const keys = [...new Set([...Object.keys(first), ...Object.keys(o)])].filter((k) => JSON.stringify(first[k] ?? null) !== JSON.stringify(o[k] ?? null));
    if (keys.length) return `run ${i} differs from run 0 in ${keys.join(', ')} (only ${STACK_MAY_DIFFER.join(' and ')} may differ)`;
  }
  if (configs[0]!.precision !== 'f32') return `precision ${configs[0]!.precision} (stacked models train in f32)`;
  const m = algorithmicModelConfig(configs[0]!);
  if (m.dropout.embd > 0 || m.dropout.attn > 0 || m.dropout.resid > 0) return 'the model has dropout';
  return null;
}

function concat(maps: readonly ReadonlyMap<string, Float32Array>[], names: readonly string[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const name of names) {
    const parts = maps.map((m) => m.get(name));
    if (parts.some((p) => !p)) throw new Error(`stacked resume: "${name}" is missing from a checkpoint`);
    const n = parts[0]!.length;
    const all = new Float32Array(n * parts.length);
    parts.forEach((p, g) => all.set(p!, g * n));
    out.set(name, all);
  }
  return out;
}

/** Train (or resume) the runs as one stack. The caller owns `engine`. Results in the order of `runs`. */
export async function runDownstreamStacked(engine: Engine, runs: readonly StackedRun[], log: (s: string) => void = () => undefined): Promise<DownstreamResult[]> {
  const why = stackRefusal(runs.map((r) => r.config));
  if (why) throw new StackError(`cannot stack these runs: ${why}`);
  if (runs.some((r) => r.opts.mixture)) throw new StackError('cannot stack these runs: weight mixtures are trained one by one');
  const c0 = runs[0]!.config;
  const G0 = runs.length;
  const task = createDownstreamTask(c0.task);
  const modelConfig = algorithmicModelConfig(c0);
  if (task.seqLen > modelConfig.nPositions) throw new Error(`${c0.task}: sequences of ${task.seqLen} tokens exceed n_positions ${modelConfig.nPositions}`);
  if (task.vocabSize > modelConfig.vocabSize) throw new Error(`${c0.task}: vocabulary ${task.vocabSize} exceeds vocab_size ${modelConfig.vocabSize}`);
  const opened: OpenRunDir[] = [];
  try {
    for (const r of runs)
      opened.push(openStageRunDir(r.opts, r.config as unknown as Record<string, unknown>, { mayChange: ALGORITHMIC_RESUME_MAY_CHANGE, maxSteps: r.config.max_steps, maxStepsKey: 'max_steps' }, log));
    const steps = opened.map((o) => o.resumeFrom?.step ?? 0);
    if (steps.some((s) => s !== steps[0])) throw new StackError(`cannot stack these runs: their latest checkpoints are at steps ${steps.join(', ')}`);
    // G models' activations: about one model's at G times the batch (the parameters are small beside them).
    // A stack that does not fit where one run does: one by one (a run that does not fit alone fails as such).
    try {
      assertDownstreamFits(engine, { ...c0, per_device_train_batch_size: G0 * c0.per_device_train_batch_size, per_device_eval_batch_size: G0 * c0.per_device_eval_batch_size });
    } catch (e) {
      assertDownstreamFits(engine, c0);
      throw new StackError(`a stack of ${G0} does not fit this adapter: ${(e as Error).message.split('\n')[0]}`);
    }
    return await trainStacked(engine, runs, opened, log);
  } finally {
    for (const o of opened) o.release();
  }
}

interface Member {
  run: StackedRun;
  dir: string;
  stream: DownstreamStream;
  evalBatches: Batch[];
  metrics: JsonlWriter;
  metricsPath: string;
  lastCheckpoint: string | null;
}

async function trainStacked(engine: Engine, runs: readonly StackedRun[], opened: readonly OpenRunDir[], log: (s: string) => void): Promise<DownstreamResult[]> {
  const e = engine;
  // An engine that ran an f16 arm before keeps its precision until told otherwise.
  setPrecision(e, 'f32');
  const G = runs.length;
  const c0 = runs[0]!.config;
  const task = createDownstreamTask(c0.task);
  const cfg = algorithmicModelConfig(c0);
  const transfers = runs.map((r) => initialWeights(r.config, { ...r.opts, mixture: null }));
  const frozen = transfers.map((t) => [...(t?.frozen ?? [])].sort().join(','));
  if (frozen.some((f) => f !== frozen[0])) throw new StackError('cannot stack these runs: their transfers freeze different parameters');
  const members: Member[] = runs.map((run, g) => {
    const c = run.config;
    const test = makeTestSet(task, c.seed, c.eval_size);
    const evalBatches: Batch[] = [];
    for (let i = 0; i < test.length; i += c.per_device_eval_batch_size) evalBatches.push(toBatch(task, test.slice(i, i + c.per_device_eval_batch_size)));
    const dir = opened[g]!.runDir;
    const metricsPath = join(dir, METRICS_FILE);
    return { run, dir, stream: new DownstreamStream(task, test, { batchSize: c.per_device_train_batch_size }), evalBatches, metricsPath, metrics: new JsonlWriter(metricsPath), lastCheckpoint: null };
  });
  const model = StackedGPT.create(e, cfg, {
    seeds: runs.map((r) => r.config.seed),
    weights: transfers.map((t) => (t ? new Map([...t.state].map(([n, x]) => [n, x.data])) : undefined)),
    decay: 'hf',
    frozen: transfers[0]?.frozen,
  });
  const opt = new AdamW(model.params, { weightDecay: c0.weight_decay, maxGradNorm: c0.max_grad_norm || null, beta1: 0.9, beta2: 0.999, eps: 1e-8, groups: G });
  const lr = makeSchedule(algorithmicScheduleSpec(c0));
  const lossAcc = e.zeros([G, 2], 'f32', 'stacked.loss_sum').keep();
  const names = paramSpecs(cfg).map((s) => s.name);
  const shapes = new Map(paramSpecs(cfg).map((s) => [s.name, s.shape]));
  const evalEvery = c0.eval_steps;
  const saveEvery = Math.ceil(c0.save_steps / evalEvery) * evalEvery;
  let step = 0;

  const evaluate = async (): Promise<EvalResult[]> => {
    const sums = members.map(() => ({ loss: 0, correct: 0, total: 0 }));
    for (let k = 0; k < members[0]!.evalBatches.length; k++) {
      const hosts = members.map((m) => m.evalBatches[k]!);
      const [parts, acc] = e.noGrad(() =>
        e.tidy(() => {
          const d = model.uploadBatches(hosts);
          const logits = model.logits(d);
          return [model.lossParts(logits, d), model.accuracyParts(logits, d)] as const;
        }),
      );
      const p = await parts.read();
      const a = await acc.read();
      parts.dispose();
      acc.dispose();
      hosts.forEach((h, g) => {
        const n = h.lossMask.reduce((s, v) => s + v, 0);
        if (n === 0) return;
        sums[g]!.loss += (p[2 * g]! / p[2 * g + 1]!) * n;
        // The device sums weigh each row by mask / n: with a 0/1 mask the count is a whole number.
        const correct = (a[2 * g]! / a[2 * g + 1]!) * n;
        sums[g]!.correct += h.lossMask.every((v) => v === 0 || v === 1) ? Math.round(correct) : correct;
        sums[g]!.total += n;
      });
    }
    return sums.map((s) => ({ loss: s.total ? s.loss / s.total : NaN, accuracy: s.total ? s.correct / s.total : NaN, tokens: s.total }));
  };

  const save = async (): Promise<void> => {
    const params = await model.params.readAll();
    const ck = await opt.checkpoint();
    const { m, v, ...state } = ck;
    for (const [g, mem] of members.entries()) {
      const dir = join(mem.dir, checkpointName('step', step));
      saveCheckpoint(dir, {
        config: cfg,
        tied: cfg.tied,
        params: modelSlice(params, G, g),
        shapes,
        optimizer: { ...state, m: modelSlice(m, G, g), v: modelSlice(v, G, g) },
        step,
        data: { step, gradAccum: 1, source: mem.stream.describe() },
        rng: { dropoutSeed: mem.run.config.seed },
        train: mem.run.config,
        metadata: { best_accuracy: null, evals_since_best: 0, skipped_steps: 0, stacked: G },
        hfConfig: toHfConfig(cfg),
      });
      mem.lastCheckpoint = dir;
      if (mem.run.config.save_total_limit) pruneCheckpoints(mem.dir, STEP_PREFIX, mem.run.config.save_total_limit);
    }
  };

  const writeEval = (results: EvalResult[]) =>
    members.forEach((mem, g) => {
      mem.metrics.write(evalRecord(step, results[g]!));
      mem.run.opts.onEval?.(step, results[g]!);
    });

  try {
    const resumeFrom = opened.map((o) => o.resumeFrom);
    if (resumeFrom[0]) {
      const cks = resumeFrom.map((r) => loadCheckpoint(r!.path));
      const params = concat(cks.map((ck) => ck.params), names.filter((n) => !(cfg.tied && n === 'lm_head.weight')));
      model.params.loadAll(params);
      const o0 = cks[0]!.optimizer;
      if (o0) {
        opt.restore({
          ...o0,
          m: concat(cks.map((ck) => ck.optimizer!.m), names),
          v: concat(cks.map((ck) => ck.optimizer!.v), names),
        } as never);
      }
      step = cks[0]!.step;
      members.forEach((mem, g) => {
        truncateMetrics(mem.metricsPath, step);
        mem.lastCheckpoint = resumeFrom[g]!.path;
      });
      log(`resumed ${members.map((m) => m.dir).join(', ')} from step ${step} (stacked ×${G})`);
    } else {
      for (const mem of members) rmSync(mem.metricsPath, { force: true });
      writeEval(await evaluate());
    }

    const inflight: Promise<unknown>[] = [];
    let tLast = performance.now();
    let since = 0;
    let sinceFrom = step;
    const maxSteps = c0.max_steps;
    while (step < maxSteps) {
      e.device.check();
      const s = step;
      const hosts = members.map((m) => m.stream.batch(s));
      e.tidy(() => {
        const d = model.uploadBatches(hosts);
        model.params.zeroGrad();
        e.startGrad();
        const { loss, parts } = model.loss(d);
        accumulate(lossAcc, parts);
        backward(loss);
        opt.step(lr(s));
      });
      e.flush();
      step++;
      since++;
      inflight.push(e.gpu.queue.onSubmittedWorkDone());
      while (inflight.length > 2) await gpuWait(inflight.shift()!);
      const isLast = step === maxSteps;
      if (step % evalEvery === 0 || isLast) {
        const acc = await lossAcc.read();
        e.clear(lossAcc);
        const gn = await opt.lastGradNorm().read();
        const now = performance.now();
        const dt = (now - tLast) / 1000;
        for (const [g, mem] of members.entries()) {
          // acc[2g + 1]: the steps that had loss rows for this model (each adds its mean with weight 1).
          const loss = acc[2 * g + 1]! > 0 ? acc[2 * g]! / acc[2 * g + 1]! : NaN;
          if ((acc[2 * g + 1]! > 0 && !Number.isFinite(loss)) || !Number.isFinite(gn[g]!))
            throw new NonFiniteError(
              `${mem.dir}: non-finite training in steps ${sinceFrom + 1}..${step} (stacked ×${G}): loss ${loss}, gradient norm ${gn[g]}; training stopped, ${lastCheckpointText(mem.lastCheckpoint)} (lower the learning rate)`,
              step,
              mem.lastCheckpoint,
            );
          const rec: StepLog = { step, loss, lr: lr(s), grad_norm: gn[g]!, tokens_per_s: (since * hosts[g]!.batch * hosts[g]!.seqLen) / dt, ms_per_step: (1000 * dt) / since };
          mem.metrics.write({ ...rec, time: new Date().toISOString() });
          mem.run.opts.onLog?.(rec);
        }
        tLast = now;
        since = 0;
        sinceFrom = step;
        writeEval(await evaluate());
      }
      if (step % saveEvery === 0) await save();
    }
    await gpuWait(Promise.all(inflight));
    e.device.check();
    return members.map((mem) => {
      const curves = readCurves(mem.metricsPath);
      const last = curves.curve[curves.curve.length - 1];
      return {
        task,
        steps: step,
        finalAccuracy: last ? last[1] : NaN,
        ...curves,
        resumedFrom: opened[0]!.resumeFrom?.step ?? null,
        parameters: model.params.numel / G,
        transfer: transfers[members.indexOf(mem)] ?? null,
      };
    });
  } finally {
    lossAcc.dispose();
    opt.destroy();
    model.destroy();
  }
}
