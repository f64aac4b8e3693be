// The stage-1 gate (src/train/procedural.ts): closing-bracket accuracy of a Dyck model against an
// independent reference computed here from the model's argmax predictions in plain TypeScript.
import { describe, expect, it } from 'vitest';
import { ProceduralLoader } from '../../src/data/procedural/dataset.ts';
import { makeConfig } from '../../src/model/config.ts';
import { GPT } from '../../src/model/gpt.ts';
import { loadConfig, PROCEDURAL_SCHEMA, type ProceduralConfig } from '../../src/train/config.ts';
import { closingBatch, stage1Gate } from '../../src/train/procedural.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

describe('stage-1 gate', () => {
  it('closing accuracy = argmax hits on positions whose target is a closing bracket', async () => {
    const e = await engine();
    const k = 2;
    const loader = new ProceduralLoader('dyck', { k, length: 16, seed: 5 }, { batchSize: 8, stepsPerEpoch: 4 });
    const validation = loader.validationBatches(0); // 40 sequences: 5 batches of 8
    const model = GPT.create(e, makeConfig({ size: '2_2_8', vocabSize: 2 * k + 1, nPositions: 16, tied: true, dropout: 0 }), { seed: 1 });
    const train = [...loader.trainBatches(0)];
    const trainer = new Trainer({ model, data: { batch: (s) => train[s % train.length]! }, maxSteps: 30, lr: () => 1e-2, progress: false });
    await trainer.run(); // a partly trained model: predictions neither all right nor all wrong

    // Reference: logits on the CPU, argmax (lowest index on ties), count over closing targets.
    let hits = 0;
    let total = 0;
    let allHits = 0;
    let allTotal = 0;
    for (const b of validation) {
      const logits = await e.noGrad(() => e.tidy(() => model.forward(model.uploadBatch(b)).keep())).read();
      const V = 2 * k + 1;
      for (let p = 0; p < b.batch * b.seqLen; p++) {
        if (b.lossMask[p]! === 0) continue;
        let best = 0;
        for (let v = 1; v < V; v++) if (logits[p * V + v]! > logits[p * V + best]!) best = v;
        const t = b.targets[p]!;
        allTotal++;
        if (best === t) allHits++;
        if (t >= k && t < 2 * k) {
          total++;
          if (best === t) hits++;
        }
      }
    }
    expect(total).toBeGreaterThan(100);
    const closing = hits / total;
    expect(closing).toBeGreaterThan(0);
    expect(closing).toBeLessThan(1);

    const c = loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { overrides: { task: 'dyck', k, seq_length: 16 } }).values;
    const gate = await stage1Gate(trainer, c, validation, 0.8);
    expect(gate.closingAccuracy).toBeCloseTo(closing, 12);
    expect(gate.accuracy).toBeCloseTo(allHits / allTotal, 12);
    expect(gate.learned).toBe(closing >= 0.8);
    expect(closingBatch(validation[0]!, k).lossTokens).toBe(
      Array.from(validation[0]!.targets).filter((t, i) => validation[0]!.lossMask[i]! > 0 && t >= k && t < 2 * k).length,
    );
    trainer.destroy();
    model.destroy();
  });
});
