/**
 * Training in precision f16 and bf16 (engine/precision.ts through the Trainer): a real run of a small
 * model tracks the f32 run's losses; the loss scale is logged, saved in checkpoints and resumed; a resumed
 * f16 run continues bitwise as the uninterrupted one; an adapter without shader-f16 is refused by name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../engine/engine.ts';
import { loadCheckpoint } from '../../src/io/checkpoint.ts';
import { batchFromIndices } from '../../src/data/procedural/batch.ts';
import { createTask } from '../../src/data/procedural/registry.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GPT } from '../../src/model/gpt.ts';
import { Trainer, type BatchSource, type StepLog, type TrainerOptions } from '../../src/train/trainer.ts';
import { useEngine } from '../helpers/gpu.ts';

const engine = useEngine();
const tmp = mkdtempSync(join(tmpdir(), 'kindling-precision-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const task = createTask('sort', { seqLength: 8, vocabSize: 12, seed: 5 });
const cfg = () => makeConfig({ size: '2_4_32', vocabSize: task.vocabSize, nPositions: task.contextLength, dropout: 0, tied: true });
const source: BatchSource = { batch: (step) => batchFromIndices(task, Array.from({ length: 16 }, (_, i) => step * 16 + i)) };

async function run(o: Partial<TrainerOptions>, resume?: string): Promise<{ logs: StepLog[]; params: Map<string, Float32Array> }> {
  const e = await engine();
  const model = GPT.create(e, cfg(), { seed: 7 });
  const logs: StepLog[] = [];
  const t = new Trainer({ model, data: source, maxSteps: 60, lr: () => 3e-3, optimizer: { weightDecay: 0.01, maxGradNorm: 1 }, logEvery: 10, progress: false, onLog: (r) => logs.push(r), ...o });
  if (resume) t.restore(loadCheckpoint(resume));
  await t.run();
  const params = await model.stateDict();
  expect(e.precision).toBe(o.precision ?? 'f32');
  t.destroy();
  expect(e.precision).toBe('f32');
  model.destroy();
  return { logs, params };
}

describe('training in half precision', () => {
  it('f16 and bf16 track the f32 run: the same losses to within 2% at every log over 60 steps; the f16 scale logged', async () => {
    const f32 = await run({});
    const f16 = await run({ precision: 'f16' });
    const bf16 = await run({ precision: 'bf16' });
    expect(f32.logs.map((l) => l.step)).toEqual([10, 20, 30, 40, 50, 60]);
    // The loss falls (the comparison is of a run that learns).
    expect(f32.logs[5]!.loss).toBeLessThan(0.7 * f32.logs[0]!.loss);
    f16.logs.forEach((l, i) => expect(Math.abs(l.loss - f32.logs[i]!.loss) / f32.logs[i]!.loss, `step ${l.step}`).toBeLessThan(0.02));
    bf16.logs.forEach((l, i) => expect(Math.abs(l.loss - f32.logs[i]!.loss) / f32.logs[i]!.loss, `bf16 step ${l.step}`).toBeLessThan(0.02));
    expect(f16.logs.every((l) => l.loss_scale === 65536 && l.overflow_skipped === 0)).toBe(true);
    // bf16 has f32's range: no loss scale.
    expect(bf16.logs.every((l) => !('loss_scale' in l))).toBe(true);
    expect(f32.logs.every((l) => !('loss_scale' in l))).toBe(true);
    // Not the same arithmetic: the weights differ.
    const w = 'transformer.h.0.mlp.c_fc.weight';
    expect(f16.params.get(w)).not.toEqual(f32.params.get(w));
    expect(bf16.params.get(w)).not.toEqual(f32.params.get(w));
    expect(bf16.params.get(w)).not.toEqual(f16.params.get(w));
  });

  it('f16 with gradient accumulation (2 micro-batches, each seeded with the scale) tracks f32 with the same accumulation', async () => {
    const data: BatchSource = { batch: (step, m) => batchFromIndices(task, Array.from({ length: 8 }, (_, i) => step * 16 + m * 8 + i)) };
    const f32 = await run({ data, gradAccum: 2, maxSteps: 30 });
    const f16 = await run({ data, gradAccum: 2, maxSteps: 30, precision: 'f16' });
    expect(f32.logs.length).toBe(3);
    f16.logs.forEach((l, i) => expect(Math.abs(l.loss - f32.logs[i]!.loss) / f32.logs[i]!.loss, `step ${l.step}`).toBeLessThan(0.02));
    expect(f16.logs.at(-1)!.overflow_skipped).toBe(0);
  });

  it('saves the loss scale in checkpoints and a resumed run continues bitwise as the uninterrupted one', async () => {
    const dir = join(tmp, 'resume');
    const ls = { initScale: 2 ** 12, interval: 7 };
    const whole = await run({ precision: 'f16', lossScale: ls, maxSteps: 20 });
    await run({ precision: 'f16', lossScale: ls, maxSteps: 12, checkpointDir: dir, saveEvery: 12 });
    const ck = loadCheckpoint(join(dir, 'step-12'));
    // 12 good steps at interval 7: grown once (at step 7), 5 good steps since.
    expect(ck.metadata.loss_scale).toEqual({ scale: 2 ** 13, goodSteps: 5, skippedSteps: 0, activationOverflowSteps: 0 });
    const resumed = await run({ precision: 'f16', lossScale: ls, maxSteps: 20 }, join(dir, 'step-12'));
    expect(resumed.logs.at(-1)!.loss_scale).toBe(2 ** 14);
    expect(whole.logs.at(-1)!.loss_scale).toBe(2 ** 14);
    for (const [name, x] of whole.params) expect([...resumed.params.get(name)!], name).toEqual([...x]);
  });

  it('an adapter without shader-f16 is refused with the feature and the Dawn toggle named; bf16 trains there', async () => {
    const e = await Engine.create({ disableFeatures: ['shader-f16'] });
    try {
      const model = GPT.create(e, cfg(), { seed: 1 });
      expect(() => new Trainer({ model, data: source, maxSteps: 1, lr: () => 1e-3, precision: 'f16', progress: false })).toThrow(/precision f16 needs the adapter feature shader-f16/);
      // bf16 needs no feature: one step runs.
      const t = new Trainer({ model, data: source, maxSteps: 1, lr: () => 1e-3, precision: 'bf16', progress: false });
      expect((await t.run()).steps).toBe(1);
      t.destroy();
      model.destroy();
    } finally {
      e.destroy();
    }
  });
});
