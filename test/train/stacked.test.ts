// Stage 2 of several seeds stacked in one model (runDownstreamStacked) against the same runs trained
// one by one (runDownstream): the same curves in every run directory, checkpoints a single run
// resumes, a stacked resume that continues its own run bitwise, and the refusals.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../../src/io/checkpoint.ts';
import { makeConfig } from '../../src/model/config.ts';
import { paramSpecs } from '../../src/model/hf_names.ts';
import { ALGORITHMIC_SCHEMA, type AlgorithmicConfig, loadConfig } from '../../src/train/config.ts';
import { runDownstream } from '../../src/train/downstream.ts';
import { assertDownstreamFits } from '../../src/train/fits.ts';
import { runDownstreamStacked, StackError, stackRefusal } from '../../src/train/stacked.ts';
import { randArray, useEngine } from '../helpers/gpu.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kindling-stacked-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const engine = useEngine();

const base = {
  task: 'condattendstream_2',
  max_steps: 12,
  eval_steps: 4,
  save_steps: 4,
  eval_size: 16,
  per_device_train_batch_size: 8,
  per_device_eval_batch_size: 8,
  warmup_steps: 2,
  learning_rate: 3e-3,
};
const config = (o: Record<string, unknown>) => loadConfig<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, { overrides: { ...base, ...o } }).values;

const metrics = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);

/** The records without wall-time fields. */
const values = (dir: string) => metrics(dir).map(({ time: _t, tokens_per_s: _k, ms_per_step: _m, ...r }) => r);

function expectClose(a: Record<string, number>[], b: Record<string, number>[], digits: number) {
  expect(a.map((r) => Object.keys(r))).toEqual(b.map((r) => Object.keys(r)));
  a.forEach((r, i) => {
    for (const [k, v] of Object.entries(r)) expect(v, `record ${i} ${k}`).toBeCloseTo(b[i]![k]!, digits);
  });
}

describe('runDownstreamStacked', () => {
  // A "stage-1" checkpoint per seed, so each run starts from its own transfer.
  const proc = makeConfig({ size: '2_4_16', vocabSize: 102, nPositions: 129, tied: true });
  const specs = paramSpecs(proc);
  const stage1 = (k: number) => {
    const dir = join(tmp, `stage1-${k}`);
    if (!existsSync(dir)) {
      const params = new Map(specs.map((s, i) => [s.name, randArray(s.shape.reduce((a, b) => a * b, 1), 100 * k + i, -0.2, 0.2)]));
      saveCheckpoint(dir, { config: { tied: true }, params, shapes: Object.fromEntries(specs.map((s) => [s.name, [...s.shape]])), step: 10 }, { fsync: false });
    }
    return dir;
  };
  const seeds = [3, 4, 7];
  const configs = () => seeds.map((seed, k) => config({ seed, pretrained_model_path: stage1(k), weights_to_be_transferred: ['attn'] }));

  it('three seeds stacked give each run directory the curves of its single run, and checkpoints a single run resumes', async () => {
    const e = await engine();
    const singles = [];
    for (const [k, c] of configs().entries()) singles.push(await runDownstream(e, c, { runDir: join(tmp, `single-${k}`) }));
    const stacked = await runDownstreamStacked(
      e,
      configs().map((c, k) => ({ config: c, opts: { runDir: join(tmp, `stacked-${k}`) } })),
    );
    for (const [k, r] of stacked.entries()) {
      expect(r.steps).toBe(12);
      expect(r.curve.map(([s]) => s)).toEqual([0, 4, 8, 12]);
      expect(r.transfer!.loaded.length).toBe(singles[k]!.transfer!.loaded.length);
      // Same records, same values to float32 summation order.
      expectClose(values(join(tmp, `stacked-${k}`)), values(join(tmp, `single-${k}`)), 4);
      // Accuracies are counts over the test set, as in a single run (no rounding residue).
      for (const r of values(join(tmp, `stacked-${k}`))) if (r.eval_accuracy !== undefined) expect(Number.isInteger(r.eval_accuracy * r.eval_tokens!)).toBe(true);
      for (const s of [4, 8, 12]) expect(existsSync(join(tmp, `stacked-${k}`, `step-${s}`, 'model.safetensors')) || existsSync(join(tmp, `stacked-${k}`, `step-${s}`))).toBe(true);
    }
    // The stacked checkpoint of run 1 at step 8, resumed alone to step 12: its single run's last records.
    rmSync(join(tmp, 'stacked-1', 'step-12'), { recursive: true });
    const resumed = await runDownstream(e, configs()[1]!, { runDir: join(tmp, 'stacked-1'), resume: true });
    expect(resumed.resumedFrom).toBe(8);
    expectClose(values(join(tmp, 'stacked-1')), values(join(tmp, 'single-1')), 4);
  });

  it('a stacked resume continues the stacked run bitwise', async () => {
    const e = await engine();
    const dirs = seeds.map((_, k) => join(tmp, `whole-${k}`));
    await runDownstreamStacked(
      e,
      configs().map((c, k) => ({ config: c, opts: { runDir: dirs[k]! } })),
    );
    const whole = dirs.map(values);
    for (const d of dirs) rmSync(join(d, 'step-12'), { recursive: true });
    const r = await runDownstreamStacked(
      e,
      configs().map((c, k) => ({ config: c, opts: { runDir: dirs[k]!, resume: true } })),
    );
    expect(r.map((x) => x.resumedFrom)).toEqual([8, 8, 8]);
    expect(dirs.map(values)).toEqual(whole);
  });

  it('refuses runs that differ in more than seed and stage-1 checkpoint, and checkpoints at different steps', async () => {
    const e = await engine();
    expect(stackRefusal([config({ seed: 1 }), config({ seed: 2, learning_rate: 1e-3 })])).toMatch(/run 1 differs from run 0 in learning_rate/);
    expect(stackRefusal([config({ seed: 1, pretrained_model_path: 'a' }), config({ seed: 2, pretrained_model_path: 'b' })])).toBeNull();
    expect(stackRefusal([config({ seed: 1, precision: 'f16' }), config({ seed: 2, precision: 'f16' })])).toBe('precision f16 (stacked models train in f32)');
    const dirs = [join(tmp, 'mixed-0'), join(tmp, 'mixed-1')];
    await runDownstream(e, config({ seed: 1 }), { runDir: dirs[0]! });
    await expect(
      runDownstreamStacked(
        e,
        [1, 2].map((seed, k) => ({ config: config({ seed }), opts: { runDir: dirs[k]!, resume: true } })),
      ),
    ).rejects.toThrow(StackError);
    await expect(runDownstreamStacked(e, [{ config: config({ seed: 1 }), opts: { runDir: join(tmp, 'x'), mixture: { attn: 'a', ffn: 'b', layerNorm: 'random', positions: 'random', tokenEmbeddings: 'random' } } }])).rejects.toThrow(/weight mixtures/);
    // A batch one run fits but a stack of 3 does not (the adapter's binding limit): StackError, nothing trained.
    const fits = (batch: number) => {
      try {
        assertDownstreamFits(e, config({ per_device_train_batch_size: batch, per_device_eval_batch_size: batch }));
        return true;
      } catch {
        return false;
      }
    };
    let b = 8;
    while (fits(3 * b)) b *= 2;
    while (!fits(b)) b = Math.floor(b * 0.9);
    expect(fits(b) && !fits(3 * b)).toBe(true);
    const big = [1, 2, 3].map((seed, k) => ({ config: config({ seed, per_device_train_batch_size: b, per_device_eval_batch_size: b }), opts: { runDir: join(tmp, `big-${k}`) } }));
    await expect(runDownstreamStacked(e, big)).rejects.toThrow(/a stack of 3 does not fit this adapter/);
    for (const k of [0, 1, 2]) expect(existsSync(join(tmp, `big-${k}`))).toBe(false);
  });
});
