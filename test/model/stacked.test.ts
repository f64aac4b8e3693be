/**
 * StackedGPT (G models in one set of dispatches) against G separate GPTs on the same batches: the
 * loss of each model, every gradient of every model, the per-model accuracy, on both kernel plans,
 * tied and untied heads, with loss counts that differ between models and with padded rows; and
 * AdamW over the stacked store (`groups`) against G optimizers: per-model clipping and skipping.
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import type { Engine } from '../../engine/engine.ts';
import { AdamW } from '../../engine/optim.ts';
import type { PlanKind } from '../../engine/plan.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GPT, type HostBatch } from '../../src/model/gpt.ts';
import { StackedGPT } from '../../src/model/stacked.ts';
import { relErr, rng, useEnginesAs } from '../helpers/gpu.ts';

const engineAs = useEnginesAs();

const SEEDS = [0, 5, 9];
const B = 6;
const T = 14;

/** Model g's batch: random tokens, loss at 1 + (r + g) % 3 random positions per row (counts differ between models), optional pads (model 0 has no attention mask at all). */
function hostBatch(g: number, V: number, pads: boolean): HostBatch {
  const r = rng(100 + g);
  const ids = Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
  const targets = Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
  const lossMask = new Float32Array(B * T);
  for (let row = 0; row < B; row++)
    for (let k = 0; k < 1 + ((row + g) % 3); k++) lossMask[row * T + Math.floor(r() * (T - 2))] = 1;
  const out: HostBatch = { ids, targets, lossMask, batch: B, seqLen: T };
  if (pads && g > 0) {
    const am = new Float32Array(B * T).fill(1);
    am[1 * T + 0] = 0; // a left pad: real tokens follow it
    am[(2 + g) * T + 3] = 0;
    out.attentionMask = am;
  }
  return out;
}

async function separate(e: Engine, cfg: ReturnType<typeof makeConfig>, hosts: HostBatch[]) {
  const out = [];
  for (const [g, host] of hosts.entries()) {
    const m = GPT.create(e, cfg, { seed: SEEDS[g]! });
    const { loss, acc } = e.tidy(() => {
      const d = m.uploadBatch(host, { sparse: true, buckets: 1 });
      m.params.zeroGrad();
      e.startGrad();
      const r = m.loss(d, { train: true });
      backward(r.loss);
      return { loss: r.loss, acc: m.accuracy(r.logits, d) };
    });
    const a = await acc.read();
    out.push({ loss: (await loss.read())[0]!, acc: a[0]! / a[1]!, grads: await m.params.readGrads() });
    m.destroy();
  }
  return out;
}

describe('StackedGPT', () => {
  for (const plan of ['software', 'hardware'] as PlanKind[])
    for (const tied of [true, false])
      for (const pads of [false, true])
        it(`${plan}, ${tied ? 'tied' : 'untied'} head${pads ? ', padded rows' : ''}: each model's loss, accuracy and every gradient equal a separate GPT's`, async () => {
          const e = await engineAs(plan);
          const cfg = makeConfig({ size: '2_4_16', vocabSize: 29, nPositions: 20, tied, dropout: 0 });
          const hosts = SEEDS.map((_, g) => hostBatch(g, cfg.vocabSize, pads));
          const ref = await separate(e, cfg, hosts);

          const s = StackedGPT.create(e, cfg, { seeds: SEEDS });
          const { loss, parts, stepParts, acc } = e.tidy(() => {
            const d = s.uploadBatches(hosts);
            s.params.zeroGrad();
            e.startGrad();
            const r = s.loss(d);
            backward(r.loss);
            return { loss: r.loss, parts: s.lossParts(r.logits, d), stepParts: r.parts, acc: s.accuracyParts(r.logits, d) };
          });
          const total = (await loss.read())[0]!;
          const p = await parts.read();
          // The parts the loss's own pass gave (what training accumulates) = a separate pass's.
          expect(Array.from(await stepParts.read())).toEqual(Array.from(p));
          const a = await acc.read();
          const grads = await s.params.readGrads();
          expect(total).toBeCloseTo(ref.reduce((t, r) => t + r.loss, 0), 4);
          for (const [g, r] of ref.entries()) {
            expect(p[2 * g]! / p[2 * g + 1]!, `loss of model ${g}`).toBeCloseTo(r.loss, 5);
            expect(a[2 * g]! / a[2 * g + 1]!, `accuracy of model ${g}`).toBeCloseTo(r.acc, 6);
            for (const [name, want] of r.grads) {
              const all = grads.get(name)!;
              const n = want.length;
              expect(relErr(all.subarray(g * n, (g + 1) * n), want), `${name} of model ${g}`).toBeLessThan(1e-4);
            }
          }
          s.destroy();
        });

  it('modelState(g) gives model g its own initialisation and given weights', async () => {
    const e = await engineAs('software');
    const cfg = makeConfig({ size: '2_4_16', vocabSize: 29, nPositions: 20, tied: true, dropout: 0 });
    const given = new Float32Array(16 * 48).map((_, i) => i / 1000);
    const s = StackedGPT.create(e, cfg, { seeds: [1, 2], weights: [undefined, new Map([['transformer.h.1.attn.c_attn.weight', given]])] });
    const single = GPT.create(e, cfg, { seed: 1 });
    const m0 = await s.modelState(0);
    const m1 = await s.modelState(1);
    for (const [name, v] of await single.stateDict()) expect(Array.from(m0.get(name)!), name).toEqual(Array.from(v));
    expect(Array.from(m1.get('transformer.h.1.attn.c_attn.weight')!)).toEqual(Array.from(given));
    expect(Array.from(m1.get('transformer.wte.weight')!)).not.toEqual(Array.from(m0.get('transformer.wte.weight')!));
    single.destroy();
    s.destroy();
  });

  it('refuses dropout, mismatched weights and batches', async () => {
    const e = await engineAs('software');
    const cfg = makeConfig({ size: '2_4_16', vocabSize: 29, nPositions: 20, tied: true, dropout: 0 });
    expect(() => StackedGPT.create(e, makeConfig({ size: '2_4_16', vocabSize: 29, nPositions: 20, tied: true, dropout: 0.1 }), { seeds: [0, 1] })).toThrow(/dropout must be 0/);
    expect(() => StackedGPT.create(e, cfg, { seeds: [] })).toThrow(/at least one model/);
    expect(() => StackedGPT.create(e, cfg, { seeds: [0, 1], weights: [undefined] })).toThrow(/1 weight maps for 2 models/);
    const s = StackedGPT.create(e, cfg, { seeds: [0, 1] });
    expect(() => s.uploadBatches([hostBatch(0, 29, false)])).toThrow(/1 batches for 2 models/);
    await expect(s.modelState(2)).rejects.toThrow(/model 2 is not in 0..1/);
    s.destroy();
  });
});

describe('AdamW over a stacked store (groups)', () => {
  const HP = { lr: 3e-3, weightDecay: 0.1, maxGradNorm: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
  const STEPS = 3;

  for (const plan of ['software', 'hardware'] as PlanKind[])
    it(`${plan}: ${STEPS} clipped steps give every model the weights and gradient norms of its own GPT and optimizer`, async () => {
      const e = await engineAs(plan);
      const cfg = makeConfig({ size: '2_4_16', vocabSize: 29, nPositions: 20, tied: true, dropout: 0 });
      const batches = (step: number) => SEEDS.map((_, g) => hostBatch(g + 7 * step, cfg.vocabSize, false));
      const want: { weights: Map<string, Float32Array>; norms: number[] }[] = [];
      for (const [g, seed] of SEEDS.entries()) {
        const m = GPT.create(e, cfg, { seed });
        const opt = new AdamW(m.params, HP);
        const norms: number[] = [];
        for (let t = 0; t < STEPS; t++) {
          e.tidy(() => {
            const d = m.uploadBatch(batches(t)[g]!, { sparse: true, buckets: 1 });
            m.params.zeroGrad();
            e.startGrad();
            backward(m.loss(d, { train: true }).loss);
            opt.step();
          });
          norms.push((await opt.lastGradNorm().read())[0]!);
        }
        want.push({ weights: await m.stateDict(), norms });
        opt.destroy();
        m.destroy();
      }
      const s = StackedGPT.create(e, cfg, { seeds: SEEDS });
      const opt = new AdamW(s.params, { ...HP, groups: SEEDS.length });
      const norms: Float32Array[] = [];
      for (let t = 0; t < STEPS; t++) {
        e.tidy(() => {
          const d = s.uploadBatches(batches(t));
          s.params.zeroGrad();
          e.startGrad();
          backward(s.loss(d).loss);
          opt.step();
        });
        norms.push((await opt.lastGradNorm().read()) as Float32Array);
      }
      for (const [g, w] of want.entries()) {
        for (let t = 0; t < STEPS; t++) {
          expect(w.norms[t]!, 'the reference clips').toBeGreaterThan(HP.maxGradNorm);
          expect(norms[t]![g]!, `norm of model ${g} at step ${t}`).toBeCloseTo(w.norms[t]!, 5);
        }
        const got = await s.modelState(g);
        // Adam's first steps move each weight by about ±lr whatever the gradient's size, so a gradient
        // element near 0 whose float32 summation order differs can move differently: 1e-4 relative.
        for (const [name, v] of w.weights) expect(relErr(got.get(name)!, v), `${name} of model ${g}`).toBeLessThan(1e-4);
      }
      opt.destroy();
      s.destroy();
    });

  it('skipNonFinite skips only the model whose gradient is not finite', async () => {
    const e = await engineAs('software');
    const cfg = makeConfig({ size: '2_4_16', vocabSize: 29, nPositions: 20, tied: true, dropout: 0 });
    const s = StackedGPT.create(e, cfg, { seeds: SEEDS });
    const opt = new AdamW(s.params, { ...HP, groups: SEEDS.length, skipNonFinite: true });
    const before = await Promise.all(SEEDS.map((_, g) => s.modelState(g)));
    e.tidy(() => {
      const d = s.uploadBatches(SEEDS.map((_, g) => hostBatch(g, cfg.vocabSize, false)));
      s.params.zeroGrad();
      e.startGrad();
      backward(s.loss(d).loss);
    });
    // A NaN in model 1's part of one gradient.
    const name = 'transformer.h.0.mlp.c_fc.weight';
    const grad = s.p(name).grad!;
    const g = (await grad.read()) as Float32Array;
    g[g.length / SEEDS.length + 5] = NaN;
    e.write(grad, g);
    opt.step();
    const state = await opt.lastGradState().read();
    expect(Array.from(state.subarray(2 * SEEDS.length))).toEqual([1, 0, 1]);
    const after = await Promise.all(SEEDS.map((_, m) => s.modelState(m)));
    for (const [k, v] of before[1]!) expect(Array.from(after[1]!.get(k)!), `model 1 ${k} untouched`).toEqual(Array.from(v));
    for (const m of [0, 2]) expect(Array.from(after[m]!.get(name)!)).not.toEqual(Array.from(before[m]!.get(name)!));
    opt.destroy();
    s.destroy();
  });

  it('refuses groups on a store that is not stacked, and the step gate', async () => {
    const e = await engineAs('software');
    const cfg = makeConfig({ size: '2_4_16', vocabSize: 29, nPositions: 20, tied: true, dropout: 0 });
    const m = GPT.create(e, cfg, { seed: 0 });
    expect(() => new AdamW(m.params, { groups: 2 })).toThrow(/needs every parameter stacked \[2, \.\.\.\]/);
    m.destroy();
    const s = StackedGPT.create(e, cfg, { seeds: [0, 1] });
    const opt = new AdamW(s.params, { groups: 2 });
    expect(() => opt.step(1e-3, { loss: e.tensor([1], [1]), acc: e.zeros([6]), step: 1 })).toThrow(/step gate is not available with groups > 1/);
    opt.destroy();
    s.destroy();
  });
});
