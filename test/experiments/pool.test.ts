// Pooling experiment directories (src/experiments/pool.ts, `kindling experiment pool`): one protocol
// per arm (a differing setting is refused with its key), duplicates keep the run that reaches further,
// --steps reads every run at one budget, and the CLI writes the reports and refuses bad inputs.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { cutAt, poolExperiments } from '../../src/experiments/pool.ts';
import { jumpTable } from '../../src/experiments/report.ts';
import { loadExperiment } from '../../src/experiments/schema.ts';
import type { RunRecord } from '../../src/experiments/types.ts';
import { captureOutput } from '../helpers/console.ts';
import { curveTo, record } from './fixtures.ts';

const io = captureOutput();
const dirs: string[] = [];
const root = mkdtempSync(join(tmpdir(), 'kindling-pool-'));
dirs.push(root);
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The experiment file of these tests: a baseline and a Sort arm on the 30-pair needle. */
function yaml(name: string, seeds: number[], maxSteps: number, stage1Lr = 3e-3): string {
  return `name: ${name}
task: condattendstream_30
seeds: [${seeds.join(', ')}]
stage1: {task: sort, seq_length: 16, vocab_size: 100, gpt2_size: 2_4_64, batch_size: 64, max_steps: 1000, lr: ${stage1Lr}}
transfer: {components: [attn], layers: [1]}
stage2: {max_steps: ${maxSteps}, n_positions: 64, n_embd: 64, per_device_train_batch_size: 250, eval_steps: 500, save_steps: 500}
arms:
  - {name: none, role: baseline}
  - {name: sort, role: procedural}
`;
}

/** An experiment directory as the runner leaves it: experiment.json and runs/<arm>/seed-<s>/result.json. */
function experimentDir(name: string, text: string, runs: RunRecord[]): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'experiment.yaml');
  writeFileSync(file, text);
  const { experiment } = loadExperiment(file);
  writeFileSync(join(dir, 'experiment.json'), JSON.stringify({ name: experiment.name, description: '', created: '2026-12-07T00:00:00Z', experiment }));
  for (const r of runs) {
    const rd = join(dir, 'runs', r.arm, `seed-${r.seed}`);
    mkdirSync(rd, { recursive: true });
    writeFileSync(join(rd, 'result.json'), JSON.stringify({ ...r, experiment: name }));
  }
  return dir;
}

const base = (seed: number, last: number) => record({ arm: 'none', role: 'baseline', seed, curve: curveTo(0.14, last), final_accuracy: 0.14 });
const sort = (seed: number, last: number, jumpAt?: number) =>
  record({ arm: 'sort', seed, curve: curveTo(jumpAt === undefined ? 0.13 : 0.95, last, jumpAt), final_accuracy: jumpAt === undefined || jumpAt > last ? 0.13 : 0.95 });

// A: seeds 0–1 to 2,000 steps; B: seeds 1–3 to 1,000 steps (seed 1 again, shorter), C: seeds 4–5 to 4,000.
const A = experimentDir('a', yaml('a', [0, 1], 2000), [base(0, 2000), base(1, 2000), sort(0, 2000, 1500), sort(1, 2000, 1000)]);
const B = experimentDir('b', yaml('b', [1, 2, 3], 1000), [base(1, 1000), base(2, 1000), sort(1, 1000, 1000), sort(2, 1000, 500), sort(3, 1000)]);
const C = experimentDir('c', yaml('c', [4, 5], 4000), [base(4, 4000), base(5, 4000), sort(4, 4000, 3000), sort(5, 4000, 1500)]);

describe('poolExperiments', () => {
  it('pools the seeds of one protocol; a duplicate seed keeps the run that reaches further', () => {
    const p = poolExperiments([B, A, C], { name: 'pooled' });
    const seeds = (arm: string) => p.results.arms.find((a) => a.name === arm)!.seeds.map((s) => s.seed).sort();
    expect(seeds('none')).toEqual([0, 1, 2, 4, 5]);
    expect(seeds('sort')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(p.sources.find((s) => s.arm === 'sort' && s.seed === 1)!.dir).toBe(A);
    expect(p.notes).toContain(`sort seed 1: in ${B} and ${A}; kept ${A} (evaluated to step 2000, the other to 1000)`);
    expect(p.notes).toContain('finished runs end at 1000, 2000, 4000 steps: --steps N reads them all at one budget');
    expect(p.results.experiment).toBe('pooled');
    expect(p.results.runs).toEqual({ planned: 11, completed: 11 });
  });

  it('--steps: every run read as stopped there; shorter runs count only if they jumped', () => {
    const p = poolExperiments([A, B, C], { name: 'at 2000', steps: 2000 });
    const sortArm = p.results.arms.find((a) => a.name === 'sort')!;
    const s4 = sortArm.seeds.find((s) => s.seed === 4)!;
    // Seed 4 jumps at 3,000: not within 2,000; its final accuracy is the one at 2,000.
    expect(s4.steps_to_half).toBeNull();
    expect(s4.curve[s4.curve.length - 1]![0]).toBe(2000);
    expect(s4.final_accuracy).toBeCloseTo(0.02 + (0.05 * 2000) / 4000, 12);
    // Sort: seeds 0, 1, 2 (500, from the 1,000-step run), 5 jump; 3 (1,000 steps, no jump) is left out; 4 does not.
    expect(jumpTable(p.results, 'condattendstream_30').rows).toEqual([
      ['none', 'baseline', '0 of 4', '–', '–'],
      ['sort', 'procedural', '4 of 5', '1250 (500–1500)', '0.05'],
    ]);
    expect(p.notes).toContain('3 run(s) evaluated to fewer than 2000 steps: counted as unfinished (left out of the jump counts unless they jumped)');
  });

  it('refuses arms of different protocols, naming the key and both directories', () => {
    const D = experimentDir('d', yaml('d', [6], 2000, 1e-3), [sort(6, 2000)]);
    expect(() => poolExperiments([A, D], { name: 'x' })).toThrow(`pool: arm sort (condattendstream_30) differs between ${A} and ${D}: stage1.lr is 0.003 there and 0.001 here`);
    expect(() => poolExperiments([A], { name: 'x' })).toThrow(/at least two experiment directories/);
    expect(() => poolExperiments([A, A], { name: 'x' })).toThrow(/is given twice/);
    expect(() => poolExperiments([A, join(root, 'nothing')], { name: 'x' })).toThrow(/holds no experiment \(no experiment.json\)/);
    expect(() => poolExperiments([A, B], { name: 'x', steps: 0 })).toThrow(/--steps must be a positive integer/);
  });

  it('cutAt keeps the evaluations up to the budget and marks a run that stopped before it unfinished', () => {
    const r = sort(9, 2000, 1500);
    const cut = cutAt(r, 1000);
    expect(cut.curve.map((p) => p[0])).toEqual([0, 500, 1000]);
    expect(cut.completed).toBe(true);
    expect(cutAt(r, 3000).completed).toBe(false);
    expect(cutAt(r, 3000).curve).toEqual(r.curve);
  });
});

describe('kindling experiment pool', () => {
  it('writes results.json, results.md, report.html and pool.json, and prints the jump counts', async () => {
    const out = join(root, 'pooled');
    expect(await main(['experiment', 'pool', A, B, C, '--out', out, '--steps', '2000'])).toBe(0);
    for (const f of ['results.json', 'results.md', 'report.html', 'pool.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(io.out).toContain('| sort | procedural | 4 of 5 | 1250 (500–1500) | 0.05 |');
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/^# Experiment pooled\n/);
    const meta = JSON.parse(readFileSync(join(out, 'pool.json'), 'utf8'));
    expect(meta.dirs).toEqual([A, B, C]);
    expect(meta.steps).toBe(2000);
    expect(meta.runs).toHaveLength(11);
  });

  it('exits 2 on --out among the pooled directories, a missing --out, or different protocols', async () => {
    expect(await main(['experiment', 'pool', A, B, '--out', B])).toBe(2);
    expect(io.err).toContain(`--out ${B} is one of the pooled directories`);
    io.err = '';
    expect(await main(['experiment', 'pool', A, B])).toBe(2);
    expect(io.err).toContain('--out');
    io.err = '';
    const D = experimentDir('d2', yaml('d2', [6], 2000, 1e-3), [sort(6, 2000)]);
    expect(await main(['experiment', 'pool', A, D, '--out', join(root, 'never')])).toBe(2);
    expect(io.err).toContain('stage1.lr is 0.003 there and 0.001 here');
    expect(existsSync(join(root, 'never'))).toBe(false);
  });
});
