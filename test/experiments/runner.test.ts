// The experiment runner end to end on a tiny experiment: results.json structure, the stage-1 cache
// shared by two arms, the step-0 evaluation, and a REAL child process killed with SIGKILL and
// resumed with --resume, whose results equal the uninterrupted run's.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runExperiment, stackUnits } from '../../src/experiments/runner.ts';
import { parseExperiment, planExperiment } from '../../src/experiments/schema.ts';
import type { ExperimentResults, RunRecord } from '../../src/experiments/types.ts';
import { useEngine } from '../helpers/gpu.ts';

const engine = useEngine();
const tmp = mkdtempSync(join(tmpdir(), 'kindling-experiment-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Two procedural arms share one stage 1 (same settings and seed); they differ in stage 2 only.
const TINY = `
name: tiny
task: condattendstream_2
seeds: [0, 1]
stage1: {task: dyck, k: 2, seq_length: 16, gpt2_size: 2_2_8, batch_size: 8, max_steps: 20, lr: 3.0e-3, save_every_steps: 10, dropout: 0}
stage2: {max_steps: 20, eval_steps: 10, save_steps: 10, batch_size: 16, eval_size: 64, per_device_eval_batch_size: 32, warmup_steps: 5, n_layer: 2, n_head: 2, n_embd: 8}
arms:
  - {name: dyck, role: procedural}
  - {name: dyck-lr, role: procedural, stage2: {learning_rate: 3.0e-3}}
`;
const file = join(tmp, 'tiny.yaml');
writeFileSync(file, TINY);
const quiet = { update: () => undefined, done: () => undefined, log: () => undefined };

function records(dir: string): Map<string, RunRecord> {
  const out = new Map<string, RunRecord>();
  for (const arm of readdirSync(join(dir, 'runs'))) {
    for (const s of readdirSync(join(dir, 'runs', arm))) {
      const f = join(dir, 'runs', arm, s, 'result.json');
      if (existsSync(f)) out.set(`${arm}/${s}`, JSON.parse(readFileSync(f, 'utf8')) as RunRecord);
    }
  }
  return out;
}

const uninterrupted = join(tmp, 'a');

describe('experiment runner', () => {
  it('runs arms × seeds, shares stage 1, evaluates at step 0 and writes results.json', async () => {
    const e = await engine();
    const r = await runExperiment({ experiment: parseExperiment(TINY), text: TINY, dir: uninterrupted, engine: e, board: quiet });
    expect(r.planned).toBe(4);
    expect(r.completed).toBe(4);
    expect(r.failed).toEqual([]);
    // One stage-1 training per seed, trained once although two arms use it.
    const stage1 = readdirSync(join(uninterrupted, 'stage1'));
    expect(stage1).toHaveLength(2);
    for (const s of stage1) {
      const steps = readFileSync(join(uninterrupted, 'stage1', s, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { step: number; loss?: number })
        .filter((x) => x.loss !== undefined)
        .map((x) => x.step);
      expect(steps).toEqual([...new Set(steps)]);
      expect(steps.at(-1)).toBe(20);
      expect(existsSync(join(uninterrupted, 'stage1', s, 'final', 'model.safetensors'))).toBe(true);
    }
    const recs = records(uninterrupted);
    expect([...recs.keys()].sort()).toEqual(['dyck-lr/seed-0', 'dyck-lr/seed-1', 'dyck/seed-0', 'dyck/seed-1']);
    for (const rec of recs.values()) {
      expect(rec.curve.map(([s]) => s)).toEqual([0, 10, 20]); // step 0 included
      expect(rec.final_accuracy).toBe(rec.curve.at(-1)![1]);
      expect(rec.loss_curve.map(([s]) => s)).toEqual([10, 20]);
      expect(rec.loss_curve.every(([, l]) => Number.isFinite(l))).toBe(true);
      expect(rec.completed).toBe(true);
      expect(rec.stage1!.task).toBe('dyck');
      expect(typeof rec.stage1!.closing_accuracy).toBe('number');
      expect(rec.stage1!.learned).toBe(rec.stage1!.closing_accuracy! >= 0.8);
    }
    // Same stage 1 for both arms of a seed.
    expect(recs.get('dyck/seed-0')!.stage1!.closing_accuracy).toBe(recs.get('dyck-lr/seed-0')!.stage1!.closing_accuracy);
    const results = JSON.parse(readFileSync(join(uninterrupted, 'results.json'), 'utf8')) as ExperimentResults;
    expect(results.experiment).toBe('tiny');
    expect(results.runs).toEqual({ planned: 4, completed: 4 });
    expect(results.arms.map((a) => a.name).sort()).toEqual(['dyck', 'dyck-lr']);
    for (const a of results.arms) {
      expect(a.role).toBe('procedural');
      expect(a.seeds.map((s) => s.seed).sort()).toEqual([0, 1]);
      expect(a.curve_stats[0]![0]).toBe(0);
      expect(Number.isFinite(a.mean)).toBe(true);
    }
    expect(existsSync(join(uninterrupted, 'report.html'))).toBe(true);
  });

  it('--stack 2: each arm\'s seeds train as one stacked model, with the curves of the runs one by one', async () => {
    const e = await engine();
    const dir = join(tmp, 'stacked');
    const logs: string[] = [];
    const r = await runExperiment({ experiment: parseExperiment(TINY), text: TINY, dir, engine: e, board: { ...quiet, done: (_id: string, line: string) => logs.push(line) }, stack: 2 });
    expect(r.completed).toBe(4);
    expect(r.failed).toEqual([]);
    expect(logs.filter((l) => l.includes('(stacked ×2)'))).toHaveLength(4);
    const one = records(uninterrupted);
    for (const [key, rec] of records(dir)) {
      const ref = one.get(key)!;
      for (const k of ['curve', 'loss_curve', 'eval_loss_curve'] as const) {
        expect(rec[k].map(([s]) => s), `${key} ${k}`).toEqual(ref[k].map(([s]) => s));
        rec[k].forEach(([, v], i) => expect(v, `${key} ${k}[${i}]`).toBeCloseTo(ref[k][i]![1], 4));
      }
      expect(rec.stage1!.closing_accuracy).toBe(ref.stage1!.closing_accuracy);
    }
  });

  it('stackUnits: up to N runs of one arm and sweep point per unit, other runs alone', () => {
    const plan = planExperiment(parseExperiment(TINY.replace('seeds: [0, 1]', 'seeds: [0, 1, 2]')));
    const units = stackUnits(plan, 2).map((u) => u.map((r) => `${r.arm}/${r.seed}`));
    expect(units).toEqual([['dyck/0', 'dyck/1'], ['dyck/2'], ['dyck-lr/0', 'dyck-lr/1'], ['dyck-lr/2']].sort((a, b) => plan.findIndex((r) => `${r.arm}/${r.seed}` === a[0]) - plan.findIndex((r) => `${r.arm}/${r.seed}` === b[0])));
    expect(stackUnits(plan, 1).every((u) => u.length === 1)).toBe(true);
  });

  it('a weight-mixture arm reports its parts\' gate: learned and the weaker closing accuracy', async () => {
    const e = await engine();
    const text = TINY.replace('name: tiny', 'name: tiny-mix')
      .replace('seeds: [0, 1]', 'seeds: [0]')
      .replace(/  - \{name: dyck-lr.*\n/, '  - {name: mix, role: procedural, transfer: {mixture: {attn: dyck, ffn: dyck, positions: attn}}}\n');
    const dir = join(tmp, 'mix');
    const r = await runExperiment({ experiment: parseExperiment(text), text, dir, engine: e, board: quiet });
    expect(r.completed).toBe(2);
    const recs = records(dir);
    const part = recs.get('dyck/seed-0')!.stage1!;
    const mix = recs.get('mix/seed-0')!.stage1!;
    expect(mix.task).toBe('mixture(attn: dyck, ffn: dyck)');
    expect(typeof part.closing_accuracy).toBe('number');
    // Both parts are the same checkpoint, so the weaker part's numbers are that checkpoint's.
    expect(mix.closing_accuracy).toBe(part.closing_accuracy);
    expect(mix.learned).toBe(part.learned);
    const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResults;
    expect(results.arms.find((a) => a.name === 'mix')!.stage1!.closing_accuracy).toBe(part.closing_accuracy);
  });

  it('the shuffled and uniform controls: their stage-1 log line says "nothing to learn by design", not "did NOT learn"', async () => {
    const e = await engine();
    const text = TINY.replace('name: tiny', 'name: tiny-controls')
      .replace('seeds: [0, 1]', 'seeds: [0]')
      .replace(/  - \{name: dyck, .*\n/, '  - {name: dyck-shuffled, role: shuffled}\n')
      .replace(/  - \{name: dyck-lr.*\n/, '  - {name: uniform, role: procedural, stage1: {task: uniform, vocab_size: 5}}\n');
    const dir = join(tmp, 'controls');
    const logs: string[] = [];
    const r = await runExperiment({ experiment: parseExperiment(text), text, dir, engine: e, board: { ...quiet, log: (line: string) => logs.push(line) } });
    expect(r.completed).toBe(2);
    const gates = logs.filter((l) => l.startsWith('stage 1 '));
    expect(gates).toHaveLength(2);
    expect(gates.find((l) => l.includes('(dyck-shuffled, seed 0)'))).toMatch(/closing accuracy [\d.]+% \(the shuffled control: nothing to learn by design\)$/);
    expect(gates.find((l) => l.includes('(uniform, seed 0)'))).toMatch(/: 20 steps, accuracy [\d.]+% \(the uniform control: nothing to learn by design\)$/);
    const u = records(dir).get('uniform/seed-0')!.stage1!;
    expect(u.task).toBe('uniform');
    expect(u.learned).toBe(false);
    expect(u.closing_accuracy).toBeNull();
  });

  it('a killed experiment rerun with --resume ends with the uninterrupted results', async () => {
    const dir = join(tmp, 'b');
    const cli = ['--import', 'tsx', 'src/cli/main.ts', 'experiment', file, '--out', dir];
    const child = spawn(process.execPath, cli, { stdio: 'ignore' });
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    // Kill as soon as the first run has finished (the others are still to come or half done).
    await new Promise<void>((res, rej) => {
      const t = setInterval(() => {
        if (existsSync(dir) && existsSync(join(dir, 'runs')) && records(dir).size > 0) {
          clearInterval(t);
          child.kill('SIGKILL');
          res();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(t);
        rej(new Error('the experiment finished before it could be killed'));
      });
    });
    await exited;
    expect(records(dir).size).toBeLessThan(4);
    // Without --resume the directory is refused (exit 2) with a message saying to pass it.
    const refused = spawnSync(process.execPath, cli, { encoding: 'utf8' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/pass --resume/);
    const resumed = spawnSync(process.execPath, [...cli, '--resume'], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/4\/4 runs finished/);
    const a = records(uninterrupted);
    const b = records(dir);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, ra] of a) {
      const rb = b.get(k)!;
      expect(rb.final_accuracy, k).toBe(ra.final_accuracy);
      expect(rb.curve, k).toEqual(ra.curve);
      expect(rb.loss_curve, k).toEqual(ra.loss_curve);
      expect(rb.eval_loss_curve, k).toEqual(ra.eval_loss_curve);
      expect(rb.stage1!.closing_accuracy, k).toBe(ra.stage1!.closing_accuracy);
    }
  });
});
