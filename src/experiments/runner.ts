/**
 * The experiment runner: every arm × sweep point × seed of an experiment file, each in its own run
 * directory, stage-1 checkpoints cached and shared, crash-safe and resumable, parallel on one machine
 * (`jobs`) or across machines (`shard`), then aggregated into results.json and the reports.
 *
 *   DIR/experiment.json            the parsed experiment (a resume must match it) and its name
 *   DIR/experiment.yaml            the file it came from (workers read this copy)
 *   DIR/stage1/<task>-<hash>/      one stage-1 training per distinct settings+seed: checkpoints,
 *                                  metrics.jsonl, final/ (the weights stage 2 starts from), stage1.json
 *   DIR/runs/<arm>/seed-<s>/       one run: stage-2 checkpoints, metrics.jsonl, result.json when done
 *   DIR/locks/                     directory locks (see lock.ts): who trains which stage 1 / run right now
 *   DIR/results.json, results.md, report.html
 *
 * Claiming: a process takes a run by creating its lock directory; a process that finds a run locked
 * by a live owner moves on to the next. Stage 1 is locked the same way; a run that needs a stage 1
 * someone else is training waits for its stage1.json. That is all the scheduling there is: `--jobs N`
 * starts N worker processes over the same list, `--shard i/n` restricts a process to runs with
 * index % n == i (n machines sharing DIR), and a killed experiment rerun with `--resume` skips runs
 * with a result.json and resumes the others from their latest checkpoint.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { writeTextAtomic } from '../util/files.ts';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../engine/engine.ts';
import { type ProceduralConfig, proceduralModelConfig } from '../train/config.ts';
import { assertSemanticFits, checkSemanticInputs, runSemantic, SEMANTIC_RUNNER_KEYS, type SemanticConfig } from '../train/semantic.ts';
import { type DownstreamMixture, type DownstreamOptions, type DownstreamResult, runDownstream } from '../train/downstream.ts';
import { runDownstreamStacked, StackError } from '../train/stacked.ts';
import { runProcedural, stage1Gate } from '../train/procedural.ts';
import { controlStream } from '../data/procedural/registry.ts';
import { aggregate } from './aggregate.ts';
import { type BoardSink, IpcBoard, ProgressBoard, relay } from './board.ts';
import { lockOwner, tryLock } from './lock.ts';
import { writeReports } from './report.ts';
import { type Experiment, ExperimentError, type MixturePartPlan, type PlannedRun, planExperiment, type Stage1Plan, stage1Settings, stableJson } from './schema.ts';
import type { ExperimentResults, RunRecord, Stage1Record } from './types.ts';
import { makeDirs } from '../util/dirs.ts';
import { assertDownstreamFits, assertProceduralFits } from '../train/fits.ts';

export interface Shard {
  index: number;
  count: number;
}

export interface RunnerOptions {
  experiment: Experiment;
  /** The YAML text (copied to DIR/experiment.yaml). */
  text: string;
  dir: string;
  resume?: boolean;
  /** Worker processes (default 1: run in this process). */
  jobs?: number;
  /** Train up to this many seeds of an arm and sweep point as one stacked model (src/train/stacked.ts); default 1: one by one. */
  stack?: number;
  shard?: Shard | null;
  /** Only the runs of arms whose name matches one of these patterns (`*` matches any text; the arm name includes its sweep point). */
  arms?: readonly string[] | null;
  /** This process is a worker started by `jobs`: no directory checks, no aggregation. */
  worker?: boolean;
  /** Reuse an engine (tests); default: one Engine.create() for this process. */
  engine?: Engine;
  board?: BoardSink;
  /** Where log lines go (default the board). */
  log?: (line: string) => void;
}

export interface RunnerResult {
  planned: number;
  /** Runs of the whole plan with a result.json. */
  completed: number;
  /** Runs this process (or its workers) failed on, with the error. */
  failed: { arm: string; seed: number; error: string }[];
  /** Worker processes (`jobs` > 1) that ended with an error of their own (e.g. no adapter), before or beside any run. */
  crashedWorkers: string[];
  results: ExperimentResults | null;
  table: string | null;
  html: string | null;
}

interface Stage1Stored {
  key: string;
  task: string;
  settings: Record<string, unknown>;
  accuracy: number;
  closing_accuracy: number | null;
  steps: number;
  elapsed_s: number;
}

const EXPERIMENT_FILE = 'experiment.json';
const RESULT_FILE = 'result.json';
const STAGE1_FILE = 'stage1.json';

function writeJsonAtomic(path: string, value: unknown): void {
  writeTextAtomic(path, `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
}

function readJson<T>(path: string): T {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m) throw new ExperimentError(`--shard: expected i/n (e.g. 0/4), got "${s}"`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new ExperimentError(`--shard: need 0 ≤ i < n, got ${s}`);
  return { index, count };
}

/** Checks or initialises the experiment directory. */
export function prepareDir(dir: string, experiment: Experiment, text: string, opts: { resume?: boolean; shard?: Shard | null }): void {
  const meta = join(dir, EXPERIMENT_FILE);
  const nonEmpty = existsSync(dir) && readdirSync(dir).length > 0;
  if (nonEmpty) {
    if (!existsSync(meta)) throw new ExperimentError(`${dir} is not empty and holds no experiment; choose another --out`);
    const stored = readJson<{ name: string; experiment: unknown }>(meta);
    if (stableJson(stored.experiment) !== stableJson(experiment)) {
      throw new ExperimentError(`${dir} holds a different experiment ("${stored.name}", or the same one edited); choose another --out`);
    }
    if (!opts.resume && !opts.shard) throw new ExperimentError(`${dir} already holds this experiment; pass --resume to continue it (finished runs are kept, partial ones resume)`);
    return;
  }
  makeDirs(dir);
  writeFileSync(join(dir, 'experiment.yaml'), text);
  writeJsonAtomic(meta, { name: experiment.name, description: experiment.description, created: new Date().toISOString(), experiment });
}

/** The experiment stored in DIR/experiment.json. */
export function readStoredExperiment(dir: string): Experiment {
  return readJson<{ experiment: Experiment }>(join(dir, EXPERIMENT_FILE)).experiment;
}

/** Whether DIR holds a previous run of exactly this experiment. */
export function holdsExperiment(dir: string, experiment: Experiment): boolean {
  const meta = join(dir, EXPERIMENT_FILE);
  if (!existsSync(meta)) return false;
  try {
    return stableJson(readJson<{ experiment: unknown }>(meta).experiment) === stableJson(experiment);
  } catch {
    return false;
  }
}

const lockName = (what: string): string => what.replace(/[/\\]/g, '__');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a run's stage 2 starts from. */
interface Stage2Inputs {
  stage1: Stage1Record | null;
  pretrained: string | null;
  mixture: DownstreamMixture | null;
}

class Context {
  readonly machine: string;
  constructor(
    readonly engine: Engine,
    readonly dir: string,
    readonly experiment: Experiment,
    readonly board: BoardSink,
    readonly log: (s: string) => void,
  ) {
    this.machine = `${engine.device.describe()} on ${hostname()}`;
  }

  stage1Dir(p: Stage1Plan): string {
    return join(this.dir, 'stage1', p.key);
  }

  /** The stage-1 checkpoint of `p` (trained here, or by whoever holds its lock). */
  /** The identifying fields every run record starts with. */
  private recordHead(run: PlannedRun): Pick<RunRecord, 'experiment' | 'arm' | 'role' | 'task' | 'seed' | 'point'> {
    return { experiment: this.experiment.name, arm: run.arm, role: run.role, task: run.task, seed: run.seed, point: run.point };
  }

  async stage1(p: Stage1Plan, id: string, run: PlannedRun): Promise<{ stored: Stage1Stored; checkpoint: string }> {
    const dir = this.stage1Dir(p);
    const file = join(dir, STAGE1_FILE);
    const checkpoint = join(dir, 'final');
    let waiting = false;
    for (;;) {
      if (existsSync(file)) return { stored: readJson<Stage1Stored>(file), checkpoint };
      const lock = tryLock(join(this.dir, 'locks', `stage1-${p.key}`));
      if (lock) {
        try {
          if (existsSync(file)) continue;
          await this.trainStage1(p, id, run, dir);
        } finally {
          lock.release();
        }
        continue;
      }
      if (!waiting) {
        this.board.update(id, { arm: run.arm, seed: run.seed, stage: 'waiting', step: 0, total: 0, note: `waiting for stage 1 ${p.key} (trained by another process)` });
        waiting = true;
      }
      await sleep(2000);
    }
  }

  private async trainStage1(p: Stage1Plan, id: string, run: PlannedRun, dir: string): Promise<void> {
    const c: ProceduralConfig = { ...p.config, save_dir: join(this.dir, 'stage1'), run_name: p.key, resume: true };
    makeDirs(dir);
    writeJsonAtomic(join(dir, 'settings.json'), stage1Settings(p.config));
    const t0 = performance.now();
    const total = Math.min(c.max_steps ?? Infinity, c.epochs * c.steps_per_epoch);
    let accuracy: number | null = null;
    let loss: number | null = null;
    const show = (step: number) => this.board.update(id, { arm: run.arm, seed: run.seed, stage: 'stage 1', step, total, accuracy, loss, note: p.arm !== run.baseArm ? `(${p.arm})` : undefined });
    show(0);
    const r = await runProcedural(this.engine, c, {
      progress: false,
      log: () => undefined,
      onLog: (rec) => {
        loss = rec.loss;
        show(rec.step);
      },
      onEval: (step, ev) => {
        accuracy = ev.accuracy;
        show(step);
      },
    });
    try {
      await r.trainer.save(join(dir, 'final'));
      const gate = await stage1Gate(r.trainer, c, r.validation, this.experiment.learned_threshold);
      const stored: Stage1Stored = {
        key: p.key,
        task: c.task,
        settings: stage1Settings(p.config),
        accuracy: gate.accuracy,
        closing_accuracy: gate.closingAccuracy,
        steps: r.result.steps,
        elapsed_s: (performance.now() - t0) / 1000,
      };
      writeJsonAtomic(join(dir, STAGE1_FILE), stored);
      const control = controlStream(c.task, c.shuffled);
      const gateText = gate.closingAccuracy !== null ? `closing accuracy ${(100 * gate.closingAccuracy).toFixed(1)}%` : `accuracy ${(100 * gate.accuracy).toFixed(1)}%`;
      this.log(`stage 1 ${p.key} (${p.arm}, seed ${c.seed}): ${r.result.steps} steps, ${gateText}${gate.learned ? '' : control ? ` (${control}: nothing to learn by design)` : ` — below learned_threshold ${this.experiment.learned_threshold}: did NOT learn its language`}`);
    } finally {
      r.trainer.destroy();
      r.model.destroy();
    }
  }

  stage1Record(s: Stage1Stored): Stage1Record {
    const gate = s.closing_accuracy ?? s.accuracy;
    return {
      task: s.task,
      settings: s.settings,
      learned: gate >= this.experiment.learned_threshold,
      closing_accuracy: s.closing_accuracy,
      accuracy: s.accuracy,
      steps: s.steps,
      elapsed_s: s.elapsed_s,
    };
  }

  private async mixturePart(part: MixturePartPlan, id: string, run: PlannedRun): Promise<{ checkpoint: string; record: Stage1Record | null; label: string }> {
    if ('checkpoint' in part) return { checkpoint: resolve(part.checkpoint), record: null, label: part.checkpoint };
    const s = await this.stage1(part.stage1, id, run);
    return { checkpoint: s.checkpoint, record: this.stage1Record(s.stored), label: part.stage1.arm };
  }

  /** Stage 2 of a semantic run (spec §7) and its result.json. */
  private async executeSemantic(
    run: PlannedRun,
    sem: SemanticConfig,
    o: { id: string; runDir: string; stage1: Stage1Record | null; pretrained: string | null; elapsedFile: string; before: number; t0: number },
  ): Promise<RunRecord> {
    const k = SEMANTIC_RUNNER_KEYS[sem.task];
    const c = { task: sem.task, values: { ...sem.values, [k.pretrained]: o.pretrained ?? (sem.task === 'c4' ? null : '') } } as SemanticConfig;
    const total = (c.values as Record<string, unknown>)[k.maxSteps] as number;
    let accuracy: number | null = null;
    let loss: number | null = null;
    const show = (step: number) => this.board.update(o.id, { arm: run.arm, seed: run.seed, stage: 'stage 2', step, total, accuracy, loss });
    const r = await runSemantic(this.engine, c, {
      runDir: o.runDir,
      resume: true,
      log: this.log,
      onLog: (rec) => {
        loss = rec.loss;
        show(rec.step);
      },
      onEval: (step, ev) => {
        accuracy = typeof ev.problem_accuracy === 'number' ? ev.problem_accuracy : ev.accuracy;
        writeJsonAtomic(o.elapsedFile, { elapsed_s: o.before + (performance.now() - o.t0) / 1000 });
        show(step);
      },
    });
    const problems = sem.task === 'deepmind_math';
    const acc = (ev: (typeof r.evals)[number]) => (problems ? (ev.problemAccuracy ?? NaN) : ev.accuracy);
    const last = r.evals[r.evals.length - 1];
    const s1 = run.stage1 && o.stage1 ? proceduralTokens(run.stage1.config, o.stage1.steps) : 0;
    const record: RunRecord = {
      ...this.recordHead(run),
      stage1: o.stage1,
      final_accuracy: last ? acc(last) : NaN,
      curve: r.evals.map((ev) => [ev.step, acc(ev)]),
      loss_curve: r.lossCurve,
      eval_loss_curve: r.evals.map((ev) => [ev.step, ev.loss]),
      elapsed_s: o.before + (performance.now() - o.t0) / 1000,
      machine: this.machine,
      completed: r.steps >= total,
      semantic: {
        tokens_per_step: r.tokensPerStep,
        procedural_tokens: s1,
        evals: r.evals.map((ev) => [ev.step, ev.tokens, ev.loss, ev.perplexity, ev.problemAccuracy]),
        final_loss: last ? last.loss : NaN,
        final_perplexity: last ? last.perplexity : NaN,
      },
    };
    writeJsonAtomic(join(o.runDir, RESULT_FILE), record);
    this.board.done(o.id, `${run.arm} seed ${run.seed}: final validation loss ${record.semantic!.final_loss.toFixed(4)} (perplexity ${record.semantic!.final_perplexity.toFixed(2)}) after ${r.steps} steps`);
    return record;
  }

  /** What a run's stage 2 starts from: its stage 1 (trained here or waited for) or weight mixture. */
  private async stage2Inputs(run: PlannedRun, id: string): Promise<Stage2Inputs> {
    let stage1: Stage1Record | null = null;
    let pretrained: string | null = null;
    let mixture: DownstreamMixture | null = null;
    if (run.stage1) {
      const s = await this.stage1(run.stage1, id, run);
      stage1 = this.stage1Record(s.stored);
      pretrained = s.checkpoint;
    } else if (run.mixture) {
      const a = await this.mixturePart(run.mixture.attn, id, run);
      const f = await this.mixturePart(run.mixture.ffn, id, run);
      const m = run.mixture.spec;
      mixture = { attn: a.checkpoint, ffn: f.checkpoint, layerNorm: m.layer_norm, positions: m.positions, tokenEmbeddings: m.token_embeddings };
      const parts = [a.record, f.record].filter((x): x is Stage1Record => x !== null);
      stage1 = {
        task: `mixture(attn: ${a.label}, ffn: ${f.label})`,
        settings: { attn: a.record?.settings ?? { checkpoint: a.checkpoint }, ffn: f.record?.settings ?? { checkpoint: f.checkpoint } },
        learned: parts.every((p) => p.learned),
        // The weaker part's closing accuracy (the one the gate depends on); null when no part has one.
        closing_accuracy: weakestClosing(parts),
        accuracy: parts.length ? Math.min(...parts.map((p) => p.accuracy)) : NaN,
        steps: parts.reduce((s, p) => s + p.steps, 0),
        elapsed_s: parts.reduce((s, p) => s + p.elapsed_s, 0),
      };
    }
    return { stage1, pretrained, mixture };
  }

  /** The time already spent on a run (its elapsed.json), and the writer of the running total. */
  private elapsed(runDir: string): { before: number; t0: number; file: string; write(): void; now(): number } {
    const file = join(runDir, 'elapsed.json');
    const before = existsSync(file) ? readJson<{ elapsed_s: number }>(file).elapsed_s : 0;
    const t0 = performance.now();
    const now = () => before + (performance.now() - t0) / 1000;
    return { before, t0, file, now, write: () => writeJsonAtomic(file, { elapsed_s: now() }) };
  }

  /** A stage-2 run's reporting hooks: the board's progress line, and elapsed.json at each evaluation. */
  private stage2Hooks(run: PlannedRun, total: number, clock: { write(): void }): Pick<DownstreamOptions, 'onLog' | 'onEval'> {
    let accuracy: number | null = null;
    let loss: number | null = null;
    const show = (step: number) => this.board.update(run.dir, { arm: run.arm, seed: run.seed, stage: 'stage 2', step, total, accuracy, loss });
    return {
      onLog: (rec) => {
        loss = rec.loss;
        show(rec.step);
      },
      onEval: (step, ev) => {
        accuracy = ev.accuracy;
        clock.write();
        show(step);
      },
    };
  }

  /** Writes a finished algorithmic stage 2's result.json and reports it. */
  private finishDownstream(run: PlannedRun, stage1: Stage1Record | null, r: DownstreamResult, maxSteps: number, elapsed: number, note = ''): RunRecord {
    const record: RunRecord = {
      ...this.recordHead(run),
      stage1,
      final_accuracy: r.finalAccuracy,
      curve: r.curve,
      loss_curve: r.lossCurve,
      eval_loss_curve: r.evalLossCurve,
      elapsed_s: elapsed,
      machine: this.machine,
      completed: r.steps >= maxSteps,
    };
    writeJsonAtomic(join(this.dir, run.dir, RESULT_FILE), record);
    this.board.done(run.dir, `${run.arm} seed ${run.seed}: final accuracy ${(100 * r.finalAccuracy).toFixed(1)}% after ${r.steps} steps${note}${stage1 && !stage1.learned ? ' (stage 1 did not learn)' : ''}`);
    return record;
  }

  /** Runs (or resumes) one planned run and writes its result.json. */
  async execute(run: PlannedRun): Promise<RunRecord> {
    const id = run.dir;
    const runDir = join(this.dir, run.dir);
    const { stage1, pretrained, mixture } = await this.stage2Inputs(run, id);
    makeDirs(runDir);
    const clock = this.elapsed(runDir);
    if (run.semantic) return this.executeSemantic(run, run.semantic, { id, runDir, stage1, pretrained, elapsedFile: clock.file, before: clock.before, t0: clock.t0 });
    const c = { ...run.stage2!, pretrained_model_path: pretrained };
    const r = await runDownstream(this.engine, c, { runDir, resume: true, mixture, log: this.log, ...this.stage2Hooks(run, c.max_steps, clock) });
    return this.finishDownstream(run, stage1, r, c.max_steps, clock.now());
  }

  /**
   * Stage 2 of runs of one arm and sweep point (different seeds) as one stacked model
   * (src/train/stacked.ts), each keeping its run directory and result.json; where they cannot be
   * stacked (StackError), one by one. Each run's elapsed time is the stack's wall time.
   */
  async executeStack(runs: readonly PlannedRun[]): Promise<void> {
    const inputs: Stage2Inputs[] = [];
    for (const run of runs) inputs.push(await this.stage2Inputs(run, run.dir));
    const clocks = runs.map((run) => {
      makeDirs(join(this.dir, run.dir));
      return this.elapsed(join(this.dir, run.dir));
    });
    const configs = runs.map((run, i) => ({ ...run.stage2!, pretrained_model_path: inputs[i]!.pretrained }));
    let results: DownstreamResult[];
    try {
      results = await runDownstreamStacked(
        this.engine,
        runs.map((run, i) => ({
          config: configs[i]!,
          opts: { runDir: join(this.dir, run.dir), resume: true, mixture: inputs[i]!.mixture, log: this.log, ...this.stage2Hooks(run, configs[i]!.max_steps, clocks[i]!) },
        })),
        this.log,
      );
    } catch (e) {
      if (!(e instanceof StackError)) throw e;
      this.log(`${runs[0]!.arm}, seeds ${runs.map((r) => r.seed).join(', ')}: ${e.message}; training them one by one`);
      for (const run of runs) await this.execute(run);
      return;
    }
    results.forEach((r, i) => this.finishDownstream(runs[i]!, inputs[i]!.stage1, r, configs[i]!.max_steps, clocks[i]!.now(), ` (stacked ×${runs.length})`));
  }
}

/** Tokens a stage 1 trained on: steps · batch · accumulation · context. */
export function proceduralTokens(config: ProceduralConfig, steps: number): number {
  return steps * config.batch_size * config.gradient_accumulation_steps * proceduralModelConfig(config).nPositions;
}

export function resultPath(dir: string, run: PlannedRun): string {
  return join(dir, run.dir, RESULT_FILE);
}

/** The result.json records of the planned runs that have one. */
export function collectRecords(dir: string, plan: readonly PlannedRun[]): RunRecord[] {
  return plan.filter((r) => existsSync(resultPath(dir, r))).map((r) => readJson<RunRecord>(resultPath(dir, r)));
}

/** Aggregates DIR's records of `experiment` into results.json and the reports. */
export function report(dir: string, experiment: Experiment, plan = planExperiment(experiment)): { results: ExperimentResults; table: string; html: string } {
  const records = collectRecords(dir, plan);
  if (records.length === 0) throw new ExperimentError(`${dir}: no finished run yet (no runs/*/seed-*/result.json)`);
  const results = aggregate(records, experiment.name);
  results.runs = { planned: plan.length, completed: records.filter((r) => r.completed).length };
  const { table, html } = writeReports(dir, results);
  return { results, table, html };
}

/**
 * Units of work: single runs, or (with `stack` > 1) up to `stack` runs of one arm and sweep point
 * whose stage 2 is algorithmic and not a weight mixture, in plan order of their first run.
 */
export function stackUnits(runs: readonly PlannedRun[], stack: number): PlannedRun[][] {
  if (!(stack > 1)) return runs.map((r) => [r]);
  const units: PlannedRun[][] = [];
  const open = new Map<string, PlannedRun[]>();
  for (const run of runs) {
    if (!run.stage2 || run.mixture || run.semantic) {
      units.push([run]);
      continue;
    }
    let u = open.get(run.arm);
    if (!u || u.length >= stack) {
      u = [];
      open.set(run.arm, u);
      units.push(u);
    }
    u.push(run);
  }
  return units;
}

/**
 * Runs this process's share of the plan: claims free runs one after another (`reportSkips`: log the
 * runs a live lock holder keeps); with `stack` > 1, the free runs of a unit (stackUnits) together.
 */
async function workLoop(ctx: Context, runs: readonly PlannedRun[], reportSkips: boolean, stack = 1): Promise<RunnerResult['failed']> {
  const failed: RunnerResult['failed'] = [];
  for (const unit of stackUnits(runs, stack)) {
    const claimed: { run: PlannedRun; release(): void }[] = [];
    for (const run of unit) {
      if (existsSync(resultPath(ctx.dir, run))) continue;
      const lockPath = join(ctx.dir, 'locks', `run-${lockName(run.dir)}`);
      const lock = tryLock(lockPath);
      if (!lock) {
        // A live process is on it (another worker, shard or command): say so, a skipped run is not silent.
        const o = lockOwner(lockPath);
        if (reportSkips) ctx.log(`${run.arm} seed ${run.seed}: skipped, held by ${o ? `pid ${o.pid} on ${o.host} since ${o.since}` : 'another process'} (lock ${lockPath})`);
        continue;
      }
      claimed.push({ run, release: () => lock.release() });
    }
    if (claimed.length === 0) continue;
    try {
      const mine = claimed.map((c) => c.run).filter((run) => !existsSync(resultPath(ctx.dir, run)));
      // Both stages are sized before either trains: stage 2 is not refused after stage 1's hours.
      for (const run of mine) {
        for (const p of [run.stage1, run.mixture?.attn, run.mixture?.ffn]) {
          const s1 = p && 'config' in p ? p : p && 'stage1' in p ? p.stage1 : null;
          if (s1) assertProceduralFits(ctx.engine, s1.config);
        }
        if (run.stage2) assertDownstreamFits(ctx.engine, run.stage2);
        if (run.semantic) assertSemanticFits(ctx.engine, run.semantic);
      }
      if (mine.length > 1) await ctx.executeStack(mine);
      else if (mine.length === 1) await ctx.execute(mine[0]!);
    } catch (e) {
      const error = (e as Error).message;
      for (const { run } of claimed) {
        if (existsSync(resultPath(ctx.dir, run))) continue;
        failed.push({ arm: run.arm, seed: run.seed, error });
        ctx.board.done(run.dir, `${run.arm} seed ${run.seed}: FAILED: ${error}`);
      }
      if (process.env.KINDLING_DEBUG) ctx.log((e as Error).stack ?? error);
    } finally {
      for (const c of claimed) c.release();
    }
  }
  return failed;
}

const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));

/** Starts `jobs` worker processes on DIR and relays their progress to `board`. */
async function runWorkers(o: RunnerOptions, board: BoardSink): Promise<Pick<RunnerResult, 'failed' | 'crashedWorkers'>> {
  const tsx = import.meta.resolve('tsx');
  const args = ['--import', tsx, MAIN, 'experiment', join(o.dir, 'experiment.yaml'), '--out', o.dir, '--worker'];
  if (o.shard) args.push('--shard', `${o.shard.index}/${o.shard.count}`);
  if (o.arms?.length) args.push('--arms', ...o.arms);
  if ((o.stack ?? 1) > 1) args.push('--stack', String(o.stack));
  const failed: RunnerResult['failed'] = [];
  const crashedWorkers: string[] = [];
  const children = Array.from({ length: o.jobs! }, (_, w) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: process.env });
    child.on('message', (msg) => {
      const m = msg as { kind: string; failed?: RunnerResult['failed'] };
      if (m.kind === 'failed') failed.push(...m.failed!);
      else relay(board, msg);
    });
    return new Promise<void>((res) => {
      child.on('exit', (code, signal) => {
        if (code !== 0) {
          const what = `worker ${w} (pid ${child.pid}) exited with ${signal ?? `code ${code}`}`;
          board.log(what);
          crashedWorkers.push(what);
        }
        res();
      });
    });
  });
  await Promise.all(children);
  return { failed, crashedWorkers };
}

/** `*` wildcards → a whole-name regular expression. */
function armPattern(p: string): RegExp {
  return new RegExp(`^${p.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** The planned runs of the arms matching any pattern (all runs without patterns); a pattern matching no arm is an error. */
export function selectArms<R extends { arm: string }>(plan: readonly R[], patterns: readonly string[] | null, experiment: Experiment): R[] {
  if (!patterns?.length) return [...plan];
  const res = patterns.map(armPattern);
  patterns.forEach((p, i) => {
    if (!plan.some((r) => res[i]!.test(r.arm))) {
      const names = [...new Set(plan.map((r) => r.arm))];
      throw new ExperimentError(`--arms: "${p}" matches no arm of ${experiment.name} (arms: ${names.join(', ')})`);
    }
  });
  return plan.filter((r) => res.some((re) => re.test(r.arm)));
}

/** Runs an experiment (or this process's share of it) and, unless a worker, aggregates and reports. */
export async function runExperiment(o: RunnerOptions): Promise<RunnerResult> {
  const plan = planExperiment(o.experiment);
  const selected = selectArms(plan, o.arms ?? null, o.experiment);
  const mine = o.shard ? selected.filter((r) => r.index % o.shard!.count === o.shard!.index) : selected;
  const board: BoardSink = o.board ?? (o.worker && process.send ? new IpcBoard((m) => process.send!(m)) : new ProgressBoard());
  const log = o.log ?? ((s: string) => board.log(s));
  // A missing corpus is reported before any stage 1 trains (and before DIR is created).
  if (!o.worker) {
    const checked = new Set<string>();
    for (const r of mine) {
      if (!r.semantic) continue;
      const key = stableJson(r.semantic.values);
      if (checked.has(key)) continue;
      checked.add(key);
      await checkSemanticInputs(r.semantic);
    }
  }
  if (!o.worker) prepareDir(o.dir, o.experiment, o.text, { resume: o.resume, shard: o.shard ?? (o.arms?.length ? { index: 0, count: 1 } : null) });
  const done = mine.filter((r) => existsSync(resultPath(o.dir, r))).length;
  if (!o.worker) {
    log(
      `experiment ${o.experiment.name}: ${plan.length} runs (${o.experiment.arms.length} arms × ${Math.max(1, plan.length / o.experiment.arms.length / o.experiment.seeds.length).toFixed(0)} sweep points × ${o.experiment.seeds.length} seeds` +
        `${o.arms?.length ? `; arms ${o.arms.join(' ')}: ${selected.length}` : ''}${o.shard ? `; shard ${o.shard.index}/${o.shard.count}: ${mine.length}` : ''}), ${done} already finished; directory ${o.dir}`,
    );
  }
  let failed: RunnerResult['failed'];
  let crashedWorkers: string[] = [];
  if ((o.jobs ?? 1) > 1 && !o.worker) ({ failed, crashedWorkers } = await runWorkers(o, board));
  else {
    const engine = o.engine ?? (await Engine.create());
    try {
      // Workers skip each other's runs all the time; a lone process says why it skipped one.
      failed = await workLoop(new Context(engine, o.dir, o.experiment, board, log), mine, !o.worker, o.stack ?? 1);
    } finally {
      if (!o.engine) engine.destroy();
    }
  }
  if (o.worker) {
    if (process.send && failed.length) process.send({ kind: 'failed', failed });
    return { planned: plan.length, completed: 0, failed, crashedWorkers, results: null, table: null, html: null };
  }
  if (board instanceof ProgressBoard) board.close();
  const completed = plan.filter((r) => existsSync(resultPath(o.dir, r))).length;
  if (completed === 0) return { planned: plan.length, completed, failed, crashedWorkers, results: null, table: null, html: null };
  const rep = report(o.dir, o.experiment, plan);
  return { planned: plan.length, completed, failed, crashedWorkers, ...rep };
}

/** The lowest closing accuracy among a mixture's parts (null when none of them is a Dyck stage 1). */
function weakestClosing(parts: Stage1Record[]): number | null {
  const xs = parts.map((p) => p.closing_accuracy).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return xs.length > 0 ? Math.min(...xs) : null;
}
