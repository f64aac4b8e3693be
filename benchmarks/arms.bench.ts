/**
 * Many small models at once: how many needle arms per minute one machine trains when J arms run side
 * by side (`kindling experiment --jobs J`: J worker processes, each with its own device on the same
 * adapter), against one arm alone. Each J runs a baseline needle experiment of J seeds with the
 * protocol's stage 2 (2_4_16, batch 1000, evaluation on 4000 test sequences every 50 steps) cut to
 * --steps steps, and reads each run's steady rate from its metrics.jsonl (wall time between the first
 * and the last logged step, evaluations included; process start, pipeline compilation and the test
 * set are left out, since they do not grow with the protocol's 10,000 steps).
 *
 * `--stack G` adds one process that trains G seeds as one stacked model (`kindling experiment
 * --stack G`, src/train/stacked.ts); its runs share one step time, the stack's.
 *
 *   node --import tsx benchmarks/arms.bench.ts [--jobs 1,2] [--stack 4] [--steps N] [--task condattendstream_30] [--keep DIR]
 *
 * Defaults: on a software adapter --jobs 1,2, no stack and --steps 150; on a GPU --jobs 1,4,9,16,
 * --stack 16 and --steps 1000. Prints a table, then one JSON line {"bench": "arms", "task", "steps",
 * "rows": [{"jobs", "stack", "ms_per_step" (mean over the runs: per arm, or per stack step),
 * "arms_per_minute" (arms of 10,000 steps), "speedup"}]}.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Device } from '../engine/device.ts';
import { readJsonl } from '../src/util/jsonl.ts';
import { option } from './options.ts';

const PROTOCOL_STEPS = 10_000;
const here = dirname(fileURLToPath(import.meta.url));
const main = join(here, '..', 'src', 'cli', 'main.ts');

interface Row {
  jobs: number;
  /** Seeds per stacked model (1: every arm its own model). */
  stack: number;
  /** Arms trained at once: jobs, or the stack's seeds. */
  arms: number;
  ms_per_step: number;
  arms_per_minute: number;
}

/** Steady seconds per step of one run: wall time between its first and last logged training steps. */
function secondsPerStep(metricsFile: string): number {
  const logs = readJsonl(metricsFile)
    .map((l) => l.value as { step: number; loss?: number; time?: string })
    .filter((r) => r.loss !== undefined && r.time !== undefined);
  if (logs.length < 2) throw new Error(`${metricsFile}: fewer than two logged steps (raise --steps)`);
  const a = logs[0]!;
  const b = logs[logs.length - 1]!;
  return (Date.parse(b.time!) - Date.parse(a.time!)) / 1000 / (b.step - a.step);
}

async function main_(): Promise<void> {
  const args = process.argv.slice(2);
  const dev = await Device.create();
  const software = dev.info.software;
  console.log(`adapter: ${dev.describe()}`);
  dev.destroy();
  const jobsList = (option(args, '--jobs') ?? (software ? '1,2' : '1,4,9,16')).split(',').map(Number);
  if (jobsList.some((j) => !Number.isInteger(j) || j < 1)) throw new Error(`--jobs: a comma-separated list of integers ≥ 1, got "${option(args, '--jobs')}"`);
  const steps = Number(option(args, '--steps') ?? (software ? 150 : 1000));
  if (!Number.isInteger(steps) || steps < 100) throw new Error(`--steps: an integer ≥ 100, got "${option(args, '--steps')}"`);
  const task = option(args, '--task') ?? 'condattendstream_30';
  const keep = option(args, '--keep');
  const root = keep ?? mkdtempSync(join(tmpdir(), 'kindling-arms-'));

  const stackList = (option(args, '--stack') ?? (software ? '' : '16')).split(',').filter(Boolean).map(Number);
  if (stackList.some((g) => !Number.isInteger(g) || g < 2)) throw new Error(`--stack: a comma-separated list of integers ≥ 2, got "${option(args, '--stack')}"`);
  const configs = [...jobsList.map((jobs) => ({ jobs, stack: 1 })), ...stackList.map((stack) => ({ jobs: 1, stack }))];
  const rows: Row[] = [];
  try {
    for (const { jobs, stack } of configs) {
      const arms = Math.max(jobs, stack);
      const name = stack > 1 ? `stack-${stack}` : `jobs-${jobs}`;
      const dir = join(root, name);
      const yaml = join(root, `${name}.yaml`);
      const seeds = Array.from({ length: arms }, (_, i) => i);
      writeFileSync(
        yaml,
        [
          `name: arms-${name}`,
          `description: ${arms} needle baseline arms ${stack > 1 ? 'stacked in one model' : 'side by side'}, ${steps} steps each`,
          `task: ${task}`,
          `seeds: [${seeds.join(', ')}]`,
          `stage2: {max_steps: ${steps}, logging_steps: 50, save_steps: ${steps}}`,
          'arms:',
          '  - {name: needle, role: baseline}',
          '',
        ].join('\n'),
      );
      const label = stack > 1 ? `[stack ${stack}]` : `[jobs ${jobs}]`;
      process.stdout.write(`${label} ${arms} arm(s) × ${steps} steps ... `);
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'experiment', yaml, '--out', dir, '--jobs', String(jobs), '--stack', String(stack)], { encoding: 'utf8', maxBuffer: 64 << 20 });
      const wall = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`kindling experiment ${label} failed (exit ${r.status ?? r.signal}):\n${(r.stderr ?? '').split('\n').slice(-15).join('\n')}`);
      const perStep = seeds.map((s) => secondsPerStep(join(dir, 'runs', 'needle', `seed-${s}`, 'metrics.jsonl')));
      const sps = perStep.reduce((a, b) => a + b, 0) / arms;
      const armsPerMinute = arms / ((sps * PROTOCOL_STEPS) / 60);
      rows.push({ jobs, stack, arms, ms_per_step: 1000 * sps, arms_per_minute: armsPerMinute });
      console.log(`${(1000 * sps).toFixed(1)} ms/step per ${stack > 1 ? 'stack' : 'arm'} (runs ${perStep.map((x) => (1000 * x).toFixed(1)).join(', ')}), wall ${wall.toFixed(0)} s`);
    }
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
  // Speed-up against one arm alone: the first row's throughput per arm (one job, no stack by default).
  const perArmAlone = rows[0]!.arms_per_minute / rows[0]!.arms;
  const speedup = (r: Row): number => r.arms_per_minute / perArmAlone;
  console.log(`\n${task}, ${steps} steps per arm; arms per minute for ${PROTOCOL_STEPS.toLocaleString('en')}-step arms (steady rate, evaluations included)`);
  console.log('| arms at once | ms/step per arm (or per stack) | arms per minute | × one arm alone |');
  console.log('| --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.stack > 1 ? `${r.stack} stacked in one model` : `${r.jobs} job(s)`} | ${r.ms_per_step.toFixed(1)} | ${r.arms_per_minute.toFixed(3)} | ${speedup(r).toFixed(2)} |`);
  }
  console.log(
    JSON.stringify({
      bench: 'arms',
      task,
      steps,
      rows: rows.map((r) => ({ jobs: r.jobs, stack: r.stack, ms_per_step: +r.ms_per_step.toFixed(2), arms_per_minute: +r.arms_per_minute.toFixed(4), speedup: +speedup(r).toFixed(3) })),
    }),
  );
}

await main_();
