/**
 * Non-finite training, device loss and out-of-memory in the trainer: each case is provoked for real
 * (a learning rate of 1e30, an infinite loss-mask weight in one step, a destroyed device, a buffer beyond the
 * device's maxBufferSize) and the run must stop with the step, the values and the last checkpoint
 * named, never writing a non-finite checkpoint; with policy `skip` the poisoned step must leave the
 * weights and moments bitwise as they were.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../engine/engine.ts';
import { loadCheckpoint } from '../../src/io/checkpoint.ts';
import { createTask } from '../../src/data/procedural/registry.ts';
import { batchFromIndices, type Batch } from '../../src/data/procedural/batch.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GPT } from '../../src/model/gpt.ts';
import { NonFiniteError, Trainer, TrainingError, type BatchSource, type TrainerOptions } from '../../src/train/trainer.ts';
import { useEngine } from '../helpers/gpu.ts';

const engine = useEngine();
const tmp = mkdtempSync(join(tmpdir(), 'kindling-nonfinite-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const task = createTask('sort', { seqLength: 6, vocabSize: 8, seed: 3 });
const cfg = () => makeConfig({ size: '2_4_32', vocabSize: task.vocabSize, nPositions: task.contextLength, dropout: 0, tied: true });

/** Batches of B samples; the steps in `poison` (0-based) get an infinite loss-mask weight (NaN loss and gradient). */
function source(B: number, poison: number[] = [], big?: { step: number; B: number }): BatchSource {
  return {
    batch: (step) => {
      const n = big && step === big.step ? big.B : B;
      const b: Batch = batchFromIndices(task, Array.from({ length: n }, (_, i) => step * B + i));
      if (!poison.includes(step)) return b;
      const lossMask = b.lossMask.slice();
      lossMask[lossMask.indexOf(1)] = Infinity; // loss Σ mask·CE / Σ mask = ∞/∞
      return { ...b, lossMask };
    },
  };
}

function trainer(model: GPT, o: Partial<TrainerOptions>): Trainer {
  return new Trainer({ model, data: source(4), maxSteps: 8, lr: () => 2e-3, optimizer: { weightDecay: 0.1, maxGradNorm: 1 }, logEvery: 1, progress: false, ...o });
}

/** Every checkpoint under dir: its step directory names, each loaded and checked finite. */
function checkpointsAllFinite(dir: string): string[] {
  const names = existsSync(dir) ? readdirSync(dir).filter((n) => existsSync(join(dir, n, 'kindling.json')) || n.startsWith('step-') || n === 'best') : [];
  for (const n of names) {
    const ck = loadCheckpoint(join(dir, n));
    for (const [name, x] of ck.params) expect(x.every(Number.isFinite), `${n}: ${name}`).toBe(true);
  }
  return names.sort();
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the run to fail');
}

const bits = (m: Map<string, Float32Array>) => [...m].map(([n, x]) => [n, Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64')]);

describe('non-finite training', () => {
  it('a learning rate of 1e30 stops the run (policy stop) and no checkpoint holds non-finite weights', async () => {
    const e = await engine();
    const dir = join(tmp, 'lr1e30');
    const model = GPT.create(e, cfg(), { seed: 1 });
    const t = trainer(model, { lr: () => 1e30, checkpointDir: dir, saveEvery: 1, logEvery: 1, evalEvery: 1, evalBatches: () => [source(4).batch(99, 0)], saveBest: true });
    const err = await rejection(t.run());
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err.message).toMatch(/^non-finite training (at|by) step \d+/);
    const names = checkpointsAllFinite(dir);
    const stepDirs = names.filter((n) => n.startsWith('step-'));
    // The step named in the message is never saved; whatever was saved before it is finite.
    expect(stepDirs).not.toContain(`step-${(err as NonFiniteError).step}`);
    if (stepDirs.length) expect(err.message).toContain(`last checkpoint: ${join(dir, stepDirs[stepDirs.length - 1]!)}`);
    else expect(err.message).toContain('no checkpoint was written');
    t.destroy();
    model.destroy();
  });

  for (const [label, logEvery, saveEvery, from] of [
    ['found at the log step', 3, 3, 4],
    ['found before a checkpoint write between log steps', 4, 3, 5],
  ] as const) {
    it(`a NaN loss at step 5 stops the run naming step 5, the values and step-3 (${label})`, async () => {
      const e = await engine();
      const dir = join(tmp, `poison-${logEvery}-${saveEvery}`);
      const model = GPT.create(e, cfg(), { seed: 2 });
      const t = trainer(model, { data: source(4, [4]), checkpointDir: dir, saveEvery, logEvery });
      const err = await rejection(t.run());
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(err.message).toMatch(new RegExp(`^non-finite training at step 5 \\(in steps ${from}\\.\\.6\\): loss NaN, gradient norm NaN; training stopped, last checkpoint: `));
      expect(err.message).toContain(join(dir, 'step-3'));
      expect(checkpointsAllFinite(dir)).toEqual(['step-3']);
      expect(loadCheckpoint(join(dir, 'step-3')).step).toBe(3);
      t.destroy();
      model.destroy();
    });
  }

  it('policy skip: the poisoned step leaves weights and moments bitwise as they were; the run goes on and counts it', async () => {
    const e = await engine();
    const state = async (poison: number[], steps: number, dir?: string) => {
      const model = GPT.create(e, cfg(), { seed: 3 });
      const logs: Record<string, number>[] = [];
      const t = trainer(model, { data: source(4, poison), maxSteps: steps, nonFinite: 'skip', checkpointDir: dir, saveEvery: dir ? steps : undefined, onLog: (r) => logs.push(r) });
      const r = await t.run();
      const out = { r, logs, p: await model.stateDict(), ...(await t.optimizer.store.readOptimizerState()) };
      t.destroy();
      model.destroy();
      return out;
    };
    const clean = await state([], 2);
    const skipped = await state([2], 3);
    expect(skipped.r.skippedSteps).toBe(1);
    expect(skipped.logs.map((l) => l.skipped)).toEqual([0, 0, 1]);
    expect(Number.isNaN(skipped.logs[2]!.loss)).toBe(true); // no good step in that interval
    for (const k of ['p', 'm', 'v'] as const) expect(bits(skipped[k]), k).toEqual(bits(clean[k]));
    const dir = join(tmp, 'skip');
    const on = await state([2], 5, dir);
    expect(on.r.skippedSteps).toBe(1);
    expect(on.r.steps).toBe(5);
    expect(on.logs.slice(3).every((l) => Number.isFinite(l.loss) && l.skipped === 0)).toBe(true);
    const ck = loadCheckpoint(join(dir, 'step-5'));
    expect(ck.metadata.skipped_steps).toBe(1);
    expect(checkpointsAllFinite(dir)).toEqual(['step-5']);
  });
});

describe('device loss and out-of-memory during training', () => {
  it('a device lost mid-run stops it with the reason and the last checkpoint, which stays intact', async () => {
    const e = await Engine.create();
    const dir = join(tmp, 'lost');
    const model = GPT.create(e, cfg(), { seed: 4 });
    const t = trainer(model, { checkpointDir: dir, saveEvery: 2, onLog: (r) => r.step === 3 && e.gpu.destroy() });
    const err = await rejection(t.run());
    expect(err).toBeInstanceOf(TrainingError);
    expect(err.message).toMatch(/^training stopped at step [34]: WebGPU device lost \(destroyed\)/);
    expect(err.message).toContain(`last checkpoint: ${join(dir, 'step-2')}`);
    expect(checkpointsAllFinite(dir)).toEqual(['step-2']);
    expect(loadCheckpoint(join(dir, 'step-2')).step).toBe(2);
    e.destroy();
  });

  it('a buffer beyond the device limit stops the run with the sizes and the last checkpoint intact', async () => {
    const limit = 256 * 1024;
    const e = await Engine.create({ limits: { maxBufferSize: limit, maxStorageBufferBindingSize: limit } });
    const dir = join(tmp, 'oom');
    const model = GPT.create(e, cfg(), { seed: 5 });
    // Step 3 (0-based 2) brings a batch whose activations need buffers over 256 KiB.
    const t = trainer(model, { data: source(4, [], { step: 2, B: 2048 }), checkpointDir: dir, saveEvery: 2 });
    const err = await rejection(t.run());
    expect(err).toBeInstanceOf(TrainingError);
    expect(err.message).toMatch(/^training stopped at step 2: out-of-memory error in buffer "[^"]+": [\d.]+ [KMG]i?B exceeds this device's maxBufferSize of 256(\.0)? KiB; last checkpoint: /);
    expect(err.message).toContain(join(dir, 'step-2'));
    expect(checkpointsAllFinite(dir)).toEqual(['step-2']);
    await e.sync().catch(() => undefined);
    t.destroy();
    model.destroy();
    e.destroy();
  });
});

