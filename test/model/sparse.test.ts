/**
 * The sparse-loss path of GPT.loss: a batch whose loss mask is sparse is cut after its last
 * loss-carrying position and the head + cross-entropy run on the gathered loss rows only. It must give
 * the dense path's loss and every parameter gradient (float32 summation order aside), and, on the
 * PyTorch float64 golden batch, the golden loss and gradients.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { Engine } from '../../engine/engine.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { makeConfig, type GPTConfig } from '../../src/model/config.ts';
import { GPT, planBuckets, type HostBatch, type UploadOptions } from '../../src/model/gpt.ts';
import { relErr, rng, useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

async function step(e: Engine, model: GPT, batch: HostBatch, opts: UploadOptions) {
  const [loss, acc, seqLen, sparse, buckets] = e.tidy(() => {
    const d = model.uploadBatch(batch, opts);
    model.params.zeroGrad();
    e.startGrad();
    const r = model.loss(d, { train: false });
    backward(r.loss);
    return [r.loss, e.noGrad(() => model.accuracy(r.logits, d)), d.seqLen, !!d.sparse, d.sparse?.packed?.buckets.map((k) => [k.batch, k.seqLen]) ?? []] as const;
  });
  const out = { loss: (await loss.read())[0]!, acc: Array.from(await acc.read()), grads: await model.params.readGrads(), seqLen, sparse, buckets };
  loss.dispose();
  acc.dispose();
  return out;
}

/** Needle-like batch: one loss position per row at 2n (n uniform in 1..maxN), optional padding. */
function needleBatch(B: number, T: number, V: number, maxN: number, seed: number, pads = false): HostBatch {
  const r = rng(seed);
  const ids = Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
  const targets = Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
  const lossMask = new Float32Array(B * T);
  const attentionMask = new Float32Array(B * T).fill(1);
  for (let b = 0; b < B; b++) {
    const p = 2 * (1 + Math.floor(r() * maxN));
    lossMask[b * T + p] = 1;
    if (b === 1) lossMask[b * T + p - 1] = 0.5; // a non-binary weight
    if (pads) {
      // a pad in the middle of row 0 (a real key padding mask) and trailing pads in every row
      if (b === 0) attentionMask[b * T + 1] = 0;
      for (let t = p + 3; t < T; t++) attentionMask[b * T + t] = 0;
    }
  }
  return { ids, targets, lossMask, ...(pads ? { attentionMask } : {}), batch: B, seqLen: T };
}

function expectSame(a: Awaited<ReturnType<typeof step>>, b: Awaited<ReturnType<typeof step>>, tol: number) {
  expect(Math.abs(a.loss - b.loss) / Math.abs(b.loss)).toBeLessThan(tol);
  expect(a.acc).toEqual(b.acc);
  expect([...a.grads.keys()].sort()).toEqual([...b.grads.keys()].sort());
  for (const [n, g] of b.grads) expect(relErr(a.grads.get(n)!, g), n).toBeLessThan(tol);
}

describe('sparse loss path = dense path', () => {
  for (const [size, tied, pads] of [
    ['2_4_16', false, false],
    ['2_4_16', true, true],
    ['1_2_12', false, true],
  ] as const)
    it(`${size} ${tied ? 'tied' : 'untied'}${pads ? ', padded rows' : ''}: the batch is cut and gives the same loss, accuracy and gradients`, async () => {
      const e = await engine();
      const T = 25;
      const cfg: GPTConfig = makeConfig({ size, vocabSize: 37, nPositions: T, tied, dropout: 0 });
      const model = GPT.create(e, cfg, { seed: 5 });
      try {
        const batch = needleBatch(17, T, 37, 8, 11, pads); // last loss position ≤ 16 < T − 1
        const dense = await step(e, model, batch, { sparse: false });
        const sparse = await step(e, model, batch, { buckets: 1 });
        expect(dense.sparse).toBe(false);
        expect(sparse.sparse).toBe(true);
        expect(dense.seqLen).toBe(T);
        expect(sparse.seqLen).toBeLessThan(T - 1);
        expectSame(sparse, dense, 2e-5);
        expect(sparse.acc[1]).toBeCloseTo(17.5, 5);
      } finally {
        model.destroy();
      }
    });

  it('auto mode keeps a dense batch on the dense path, bitwise', async () => {
    const e = await engine();
    const cfg = makeConfig({ size: '1_2_12', vocabSize: 19, nPositions: 9, tied: true, dropout: 0 });
    const model = GPT.create(e, cfg, { seed: 1 });
    try {
      const batch = needleBatch(5, 9, 19, 3, 4);
      batch.lossMask.fill(1);
      const a = await step(e, model, batch, {});
      const b = await step(e, model, batch, { sparse: false });
      expect(a.sparse).toBe(false);
      expect(a.loss).toBe(b.loss);
      for (const [n, g] of b.grads) expect(Array.from(a.grads.get(n)!), n).toEqual(Array.from(g));
    } finally {
      model.destroy();
    }
  });
});

describe('bucketed sparse batches (rows split by their last loss position)', () => {
  it('planBuckets picks the cheapest contiguous split', () => {
    expect(planBuckets([5, 5, 5], 4, 0)).toEqual([5]);
    expect(planBuckets([], 4, 0)).toEqual([]);
    expect(planBuckets([1, 2, 3, 4], 4, 0)).toEqual([1, 2, 3, 4]);
    expect(planBuckets([1, 2, 3, 4], 2, 0)).toEqual([2, 4]); // 2·2 + 2·4 = 12 beats 1 + 3·4 = 13 and 3·3 + 4 = 13
    expect(planBuckets([1, 2, 3, 4], 4, 100)).toEqual([4]); // a large fixed cost: one bucket
    expect(planBuckets([10, 10, 10, 10, 60], 4, 5)).toEqual([10, 60]);
  });

  for (const [size, tied, pads, nb] of [
    ['2_4_16', false, false, 2],
    ['2_4_16', false, false, 4],
    ['2_4_16', true, true, 3],
    ['1_2_12', false, true, 4],
  ] as const)
    it(`${size} ${tied ? 'tied' : 'untied'}${pads ? ', padded rows' : ''}, ${nb} buckets: the same loss, accuracy and gradients as the dense and the one-bucket path`, async () => {
      const e = await engine();
      const T = 25;
      const cfg: GPTConfig = makeConfig({ size, vocabSize: 37, nPositions: T, tied, dropout: 0 });
      const model = GPT.create(e, cfg, { seed: 5 });
      try {
        const batch = needleBatch(17, T, 37, 11, 13, pads);
        // a row without any loss position belongs to no bucket
        batch.lossMask.fill(0, 3 * T, 4 * T);
        const dense = await step(e, model, batch, { sparse: false });
        const one = await step(e, model, batch, { buckets: 1 });
        const split = await step(e, model, batch, { buckets: nb });
        expect(one.buckets).toEqual([]);
        expect(split.buckets.length).toBe(nb);
        expect(split.buckets.reduce((a, [rows]) => a + rows, 0)).toBe(16);
        for (let k = 1; k < nb; k++) expect(split.buckets[k]![1]).toBeGreaterThan(split.buckets[k - 1]![1]);
        expect(split.buckets.at(-1)![1]).toBe(split.seqLen);
        expectSame(split, dense, 2e-5);
        expectSame(split, one, 2e-5);
        expect(split.acc[1]).toBeCloseTo(16.5, 5);
      } finally {
        model.destroy();
      }
    });

  it("'auto' splits the needle batch on the software plan and leaves a model with dropout unsplit", async () => {
    const e = await engine();
    const batch = needleBatch(1000, 63, 64, 30, 21);
    for (const [dropout, want] of [
      [0, true],
      [0.1, false],
    ] as const) {
      const model = GPT.create(e, makeConfig({ size: '1_2_12', vocabSize: 64, nPositions: 63, tied: true, dropout }), { seed: 1 });
      try {
        const got = e.tidy(() => {
          const d = model.uploadBatch(batch);
          return d.sparse?.packed?.buckets.map((k) => k.batch * k.seqLen);
        });
        if (!want) expect(got).toBeUndefined();
        else if (e.plan.kind === 'software') {
          expect(got!.length).toBeGreaterThanOrEqual(2);
          expect(got!.reduce((a, b) => a + b, 0)).toBeLessThan(0.8 * 1000 * 61);
        }
      } finally {
        model.destroy();
      }
    }
  });
});

describe('sparse loss path against the PyTorch float64 golden', () => {
  for (const variant of ['tied', 'untied'] as const)
    it(`${variant}: forced sparse gives the golden loss and every golden gradient`, async () => {
      const dir = new URL('../golden/', import.meta.url);
      const g = JSON.parse(readFileSync(new URL(`gpt_${variant}.json`, dir), 'utf8'));
      const st = readSafetensors(new Uint8Array(readFileSync(new URL(`gpt_${variant}.safetensors`, dir))));
      const get = (k: string) => st.tensors.get(k)!.data;
      const c = g.config;
      const cfg = makeConfig({ size: `${c.n_layer}_${c.n_head}_${c.n_embd}`, vocabSize: c.vocab_size, nPositions: c.n_positions, tied: c.tie_word_embeddings, dropout: 0 });
      const weights = new Map<string, Float32Array>((g.param_names as string[]).map((n) => [n, get(`init.${n}`) as Float32Array]));
      const e = await engine();
      const model = GPT.create(e, cfg, { weights });
      try {
        const batch = { ids: get('ids') as Int32Array, targets: get('targets') as Int32Array, lossMask: get('mask') as Float32Array, batch: g.batch.B, seqLen: g.batch.T };
        // Every golden row's last loss position is T − 1, so the batch cannot be split into buckets.
        const r = await step(e, model, batch, { sparse: true, buckets: 3 });
        expect(r.sparse).toBe(true);
        expect(r.buckets).toEqual([]);
        expect(Math.abs(r.loss - g.loss) / g.loss).toBeLessThan(g.tolerances.loss);
        for (const n of g.param_names as string[]) expect(relErr(r.grads.get(n)!, get(`grad.${n}`)), n).toBeLessThan(g.tolerances.grads);
      } finally {
        model.destroy();
      }
    });
});

describe('sparse loss path under the GPU plan', () => {
  const engines: Engine[] = [];
  afterAll(async () => {
    for (const e of engines) {
      await e.sync().catch(() => undefined);
      e.destroy();
    }
  });
  it("the hardware plan's sparse step equals the software plan's dense step", async () => {
    const cfg = makeConfig({ size: '2_4_16', vocabSize: 64, nPositions: 63, tied: false, dropout: 0 });
    const batch = needleBatch(8, 63, 64, 30, 9);
    const run = async (planAs: 'hardware' | 'software', sparse: boolean, buckets = 1) => {
      const e = await Engine.create({ planAs });
      engines.push(e);
      const model = GPT.create(e, cfg, { seed: 2 });
      const r = await step(e, model, batch, { sparse, buckets });
      model.destroy();
      return r;
    };
    const hw = await run('hardware', true);
    const sw = await run('software', false);
    expect(hw.sparse).toBe(true);
    expectSame(hw, sw, 1e-4);
    const hwSplit = await run('hardware', true, 3);
    expect(hwSplit.buckets.length).toBe(3);
    expectSame(hwSplit, sw, 1e-4);
  });
});
