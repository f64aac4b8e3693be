// Quick correctness checks of the end-to-end benchmark's peers (benchmarks/peers/): the TF.js WebGPU
// GPT-2 step and the PyTorch CPU one, on a tiny shape. No timing assertions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTfjsGptStep, GPT_SHAPES, releaseTfjs, type GptState } from '../benchmarks/peers/tfjs_gpt.ts';
import { runTorchGptStep, torchAvailableSync } from '../benchmarks/peers/torch_gpt.ts';

const torchAvailable = torchAvailableSync();
const tiny = GPT_SHAPES.tiny; // vocab 11, context 5, d 8, 2 heads, 1 layer, batch 2, tied
const LR = 1e-2;
const STEPS = 5;

let state: GptState | null = null;
let tfLosses: number[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'kindling-peers-'));

afterAll(async () => {
  await releaseTfjs(); // destroys TF.js's Dawn device so the worker exits
  rmSync(tmp, { recursive: true, force: true });
});

describe('TF.js WebGPU GPT-2 step', () => {
  it('first loss ≈ ln(vocab) and the loss decreases on a fixed batch', async () => {
    const g = await createTfjsGptStep(tiny, { lr: LR, seed: 3 });
    try {
      expect(g.params).toBe(11 * 8 + 5 * 8 + 12 * 8 * 8 + 13 * 8 + 2 * 8);
      state = await g.exportState(); // initial weights and batch, for the cross-check below
      tfLosses = [];
      for (let i = 0; i < STEPS; i++) tfLosses.push(await g.step());
    } finally {
      g.dispose();
    }
    for (const l of tfLosses) expect(Number.isFinite(l)).toBe(true);
    // N(0, 0.02) init gives near-uniform logits.
    expect(Math.abs(tfLosses[0]! - Math.log(tiny.vocab))).toBeLessThan(0.05);
    for (let i = 1; i < STEPS; i++) expect(tfLosses[i]!).toBeLessThan(tfLosses[i - 1]!);
    expect(tfLosses[STEPS - 1]!).toBeLessThan(tfLosses[0]! - 0.05);
  });

  it('an untied head also trains', async () => {
    const g = await createTfjsGptStep({ ...tiny, tied: false, layers: 2 }, { lr: LR });
    try {
      const l0 = await g.step();
      let l = l0;
      for (let i = 0; i < 3; i++) l = await g.step();
      expect(Math.abs(l0 - Math.log(tiny.vocab))).toBeLessThan(0.05);
      expect(l).toBeLessThan(l0);
    } finally {
      g.dispose();
    }
  });
});

describe('PyTorch CPU GPT-2 step', () => {
  it.skipIf(!torchAvailable)('first loss ≈ ln(vocab) and the loss decreases', async () => {
    const r = await runTorchGptStep('tiny', { warmup: 0, steps: STEPS, lr: LR });
    if ('unavailable' in r) throw new Error(r.unavailable);
    expect(r.losses).toHaveLength(STEPS);
    expect(Math.abs(r.losses[0]! - Math.log(tiny.vocab))).toBeLessThan(0.05);
    for (let i = 1; i < STEPS; i++) expect(r.losses[i]!).toBeLessThan(r.losses[i - 1]!);
    expect(r.msPerStep).toBeGreaterThan(0);
  });

  it.skipIf(!torchAvailable)('matches the TF.js peer step for step from the same weights and batch', async () => {
    expect(state).not.toBeNull();
    const path = join(tmp, 'state.json');
    writeFileSync(path, JSON.stringify(state));
    const r = await runTorchGptStep('tiny', { warmup: 0, steps: STEPS, statePath: path });
    if ('unavailable' in r) throw new Error(r.unavailable);
    expect(r.losses).toHaveLength(STEPS);
    // Same model, loss, clipping and AdamW in float32: the two trajectories agree to float32 rounding.
    for (let i = 0; i < STEPS; i++) expect(Math.abs(r.losses[i]! - tfLosses[i]!)).toBeLessThan(1e-4);
  });
});
