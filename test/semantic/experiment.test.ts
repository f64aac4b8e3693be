// Semantic experiments through the runner (tiny: 1_2_16 models, GPT-2 tokens, context 16) and the
// tokens-to-reach computation behind the data-saved numbers (spec §7.4), against hand-computed curves.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataSaved, tokensToReach } from '../../src/experiments/aggregate.ts';
import { runExperiment } from '../../src/experiments/runner.ts';
import { ExperimentError, loadExperiment, parseExperiment, planExperiment } from '../../src/experiments/schema.ts';
import type { ArmSummary, ExperimentResults, RunRecord } from '../../src/experiments/types.ts';
import { useEngine } from '../helpers/gpu.ts';
import { writeC4 } from './fixtures.ts';

const engine = useEngine();
const tmp = mkdtempSync(join(tmpdir(), 'kindling-semantic-exp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = { update: () => undefined, done: () => undefined, log: () => undefined };

describe('tokensToReach', () => {
  const curve: [number, number][] = [
    [0, 10],
    [100, 6],
    [200, 4],
    [300, 3.5],
  ];
  it('interpolates linearly between the evaluations around the target', () => {
    // 5 lies between 6 (100 tokens) and 4 (200): halfway.
    expect(tokensToReach(curve, 5)).toEqual({ interpolated: 150, firstEval: 200 });
    // 3.8: between 4 (200) and 3.5 (300), 0.2/0.5 of the way.
    expect(tokensToReach(curve, 3.8).interpolated).toBeCloseTo(240, 10);
    expect(tokensToReach(curve, 4)).toEqual({ interpolated: 200, firstEval: 200 });
    expect(tokensToReach(curve, 12)).toEqual({ interpolated: 0, firstEval: 0 });
  });
  it('is null when the curve never gets there, and skips NaN evaluations', () => {
    expect(tokensToReach(curve, 3)).toEqual({ interpolated: null, firstEval: null });
    expect(tokensToReach([[0, 10], [100, NaN], [200, 4]], 7)).toEqual({ interpolated: 0 + (3 / 6) * 200, firstEval: 200 });
  });
  it('gives the data saved with and without the procedural tokens', () => {
    const arm = (name: string, role: ArmSummary['role'], evals: [number, number][], proc: number): ArmSummary => ({
      name,
      role,
      task: 'c4',
      point: {},
      stage1: null,
      seeds: [{ seed: 0, final_accuracy: 0, curve: [], steps_to_half: null, loss_curve: [], eval_loss_curve: [], stage1: null, completed: true, semantic: { tokens_per_step: 100, procedural_tokens: proc, evals: evals.map(([t, l]) => [t / 100, t, l, Math.exp(l), null]), final_loss: evals.at(-1)![1], final_perplexity: 0 } }],
      mean: 0,
      std: 0,
      best: { seed: 0, final_accuracy: 0 },
      curve_stats: [],
    });
    const d = dataSaved([arm('none', 'baseline', [[0, 10], [400, 5], [800, 4]], 0), arm('set', 'procedural', [[0, 9], [400, 4.5], [800, 3]], 80), arm('bad', 'procedural', [[0, 11], [800, 6]], 10)]);
    expect(d).toHaveLength(1);
    expect(d[0]!.target_loss).toBe(4);
    expect(d[0]!.baseline_tokens).toBe(800);
    const set = d[0]!.arms.find((a) => a.arm === 'set')!;
    expect(set.tokens_to_reach).toBeCloseTo(400 + (0.5 / 1.5) * 400, 9); // 533.3
    expect(set.tokens_to_reach_first_eval).toBe(800);
    expect(set.data_saved).toBeCloseTo(1 - 533.3333333 / 800, 6);
    expect(set.data_saved_with_procedural).toBeCloseTo(1 - 613.3333333 / 800, 6);
    const bad = d[0]!.arms.find((a) => a.arm === 'bad')!;
    expect(bad.tokens_to_reach).toBeNull();
    expect(bad.data_saved).toBeNull();
  });
});

describe('semantic experiments', () => {
  it('loads the semantic-quick preset by name, with attention+MLP+LayerNorm transfer on C4', () => {
    const { experiment } = loadExperiment('semantic-quick');
    const plan = planExperiment(experiment);
    expect(plan.map((r) => `${r.arm}/${r.seed}`)).toEqual(['none/0', 'none/1', 'set/0', 'set/1', 'union/0', 'union/1']);
    for (const r of plan) expect(r.semantic!.task).toBe('c4');
    expect((plan[2]!.semantic!.values as Record<string, unknown>).weights_to_transfer).toEqual(['attn', 'ffn', 'ln']);
    expect(plan[0]!.stage1).toBeNull();
  });

  it('rejects a runner key in stage2 and an algorithmic arm in a semantic experiment', () => {
    const base = `name: x\ntask: c4\nstage1: {task: set}\nstage2: {train_data: a, validation_data: b}\narms: [{name: none, role: baseline}]\n`;
    expect(() => parseExperiment(base.replace('validation_data: b', 'validation_data: b, pretrained_path: p'))).toThrow(/stage2.pretrained_path: set by the runner/);
    expect(() => parseExperiment(base.replace('role: baseline}', 'role: baseline, task: needle_10}'))).toThrow(ExperimentError);
    expect(() => parseExperiment(base.replace('{train_data: a, validation_data: b}', '{validation_data: b}'))).toThrow(/train_data is required/);
    // Block selection and weight surgery are algorithmic-only.
    const arm = (t: string) => base.replace('arms: [{name: none, role: baseline}]', `arms: [{name: set, role: procedural, transfer: ${t}}]`);
    expect(() => parseExperiment(arm('{layers: [0]}'))).toThrow(/arms\[0\]\.transfer\.layers: implemented for algorithmic tasks only/);
    expect(() => parseExperiment(arm('{scale: {c_proj: -1}}'))).toThrow(/arms\[0\]\.transfer\.scale: implemented for algorithmic tasks only/);
  });

  it('fails before creating DIR when the English corpus is missing, telling how to build it', async () => {
    const e = await engine();
    const { experiment, text } = loadExperiment('semantic-quick');
    const dir = join(tmp, 'missing');
    // From a directory without data/corpora (a checkout may hold a built corpus).
    const cwd = process.cwd();
    process.chdir(mkdtempSync(join(tmp, 'cwd-')));
    try {
      await expect(runExperiment({ experiment, text, dir, engine: e, board: quiet })).rejects.toThrow(/kindling corpora build english/);
    } finally {
      process.chdir(cwd);
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('runs baseline and a warmed arm through the runner: results.json has the curves against tokens and the data saved', async () => {
    const e = await engine();
    const data = writeC4(join(tmp, 'c4'), { train: 30, validation: 4 });
    const yaml = `
name: sem-tiny
task: c4
seeds: [0]
stage1: {task: set, seq_length: 8, vocab_size: 20, gpt2_size: 1_2_16, batch_size: 8, max_steps: 10, lr: 3.0e-3, save_every_steps: 10, dropout: 0}
stage2: {train_data: '${data.train}', validation_data: '${data.validation}', gpt2_size: 1_2_16, n_positions: 16, dropout: 0, bsz: 2, gradient_accumulation_steps: 1, max_steps: 6, eval_steps: 3, save_steps: 3, logging_steps: 3, lr: 3.0e-3, per_device_eval_batch_size: 8}
arms:
  - {name: none, role: baseline}
  - {name: set, role: procedural}
`;
    const dir = join(tmp, 'exp');
    // The token cache goes to data/cache/tokens under the working directory: a scratch one here.
    const cwd = process.cwd();
    const scratch = mkdtempSync(join(tmp, 'cwd-'));
    process.chdir(scratch);
    let r;
    try {
      r = await runExperiment({ experiment: parseExperiment(yaml), text: yaml, dir, engine: e, board: quiet });
    } finally {
      process.chdir(cwd);
    }
    // Both arms train on the same corpus, tokenizer and packing: one cache, built once.
    expect(readdirSync(join(scratch, 'data', 'cache', 'tokens')).filter((n) => n.startsWith('c4-'))).toHaveLength(1);
    expect(r.failed).toEqual([]);
    expect(r.completed).toBe(2);
    const rec = JSON.parse(readFileSync(join(dir, 'runs', 'set', 'seed-0', 'result.json'), 'utf8')) as RunRecord;
    expect(rec.semantic!.tokens_per_step).toBe(2 * 16);
    expect(rec.semantic!.evals.map((x) => [x[0], x[1]])).toEqual([[0, 0], [3, 96], [6, 192]]);
    // Stage 1: 10 steps × 8 sequences × 17 tokens (Set with L = 8: input, separator, output: 2L + 1).
    expect(rec.semantic!.procedural_tokens).toBe(10 * 8 * 17);
    expect(rec.eval_loss_curve.map(([s]) => s)).toEqual([0, 3, 6]);
    const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResults;
    const d = res.data_saved![0]!;
    expect(d.task).toBe('c4');
    expect(d.baseline).toBe('none');
    const base = JSON.parse(readFileSync(join(dir, 'runs', 'none', 'seed-0', 'result.json'), 'utf8')) as RunRecord;
    expect(d.target_loss).toBe(base.semantic!.final_loss);
    expect(d.baseline_tokens).toBe(192);
    const set = d.arms[0]!;
    const expected = tokensToReach(rec.semantic!.evals.map((x) => [x[1], x[2]]), d.target_loss).interpolated;
    expect(set.tokens_to_reach).toBe(expected);
    expect(set.data_saved).toBe(expected === null ? null : 1 - expected / 192);
    const md = readFileSync(join(dir, 'results.md'), 'utf8');
    expect(md).toContain('c4: validation loss and data saved');
    expect(md).not.toContain('Final test accuracy');
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('Validation loss against training tokens');
  }, 300_000);
});
