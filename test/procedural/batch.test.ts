// Batcher, mixtures, epoch loaders and the curriculum schedule.
import { describe, expect, it } from 'vitest';
import {
  Batcher,
  CurriculumSchedule,
  Mixture,
  ProceduralLoader,
  StreamStore,
  createTask,
  epochOrder,
  epochSeeds,
  packBatch,
} from '../../src/data/procedural/index.ts';

describe('packBatch / Batcher', () => {
  it('packs rows, pads shorter samples with PAD and zero masks', () => {
    const set = createTask('set', { seqLength: 8, vocabSize: 10 });
    const stack = createTask('stack', { seqLength: 8, vocabSize: 10 }); // 16 tokens, context 17
    const samples = [set.sample(0), stack.sample(0)];
    const b = packBatch(samples, { padId: 11, seqLen: 17 });
    expect([b.batch, b.seqLen, b.ids.length]).toEqual([2, 17, 34]);
    expect(Array.from(b.ids.subarray(0, 17))).toEqual(Array.from(samples[0].ids));
    expect(Array.from(b.ids.subarray(17, 33))).toEqual(Array.from(samples[1].ids));
    expect(b.ids[33]).toBe(11);
    expect(b.targets[33]).toBe(11);
    expect(b.lossMask[33]).toBe(0);
    expect(b.attentionMask[33]).toBe(0);
    expect(b.attentionMask[32]).toBe(1); // stack attention is all ones, even on its own PADs
    expect(b.lossTokens).toBe(5 + 2);
    expect(b.lossMask).toBeInstanceOf(Float32Array);
    expect(Array.from(b.lossMask.subarray(17, 34)).map((i) => i)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(() => packBatch(samples, { padId: 11, seqLen: 16 })).toThrow(RangeError);
    expect(packBatch(samples, { padId: 11 }).seqLen).toBe(17);
  });

  it('Batcher walks consecutive indices at the context length', () => {
    const task = createTask('delete');
    const batcher = new Batcher(task, 64, { start: 10 });
    const b1 = batcher.next();
    const b2 = batcher.next();
    expect([b1.batch, b1.seqLen]).toEqual([64, 131]);
    expect(Array.from(b2.ids.subarray(0, 131))).toEqual(Array.from(task.sample(74).ids));
    expect(batcher.position).toBe(138);
  });
});

describe('Mixture', () => {
  it('chooses components from the documented stream: random.seed(seed + (MIX << 32)), u < cumulative weight', () => {
    const a = createTask('set', { seqLength: 8, vocabSize: 10 });
    const b = createTask('union', { seqLength: 8, vocabSize: 10 });
    const mix = new Mixture([{ task: a, weight: 1 }, { task: b, weight: 3 }], 7);
    // python: random.seed(7 + (0x4D495831 << 32)); [0 if random.random() < 0.25 else 1 for _ in range(20)]
    const golden = [1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    expect(Array.from({ length: 20 }, (_, i) => mix.choice(i).component)).toEqual(golden);
    // The r-th pick of a component is that component's sample r.
    expect(mix.choice(6)).toEqual({ component: 0, index: 0 });
    expect(mix.choice(10)).toEqual({ component: 0, index: 1 });
    expect(mix.choice(11)).toEqual({ component: 1, index: 9 });
    expect(Array.from(mix.sample(11).ids)).toEqual(Array.from(b.sample(9).ids));
    expect([mix.vocabSize, mix.contextLength]).toEqual([12, 18]);
  });

  it('is deterministic, random-access, follows the weights, and a single component reproduces the task', () => {
    const sort = createTask('sort');
    const dyck = createTask('dyck', { k: 4, length: 64 });
    const m1 = new Mixture([{ task: sort, weight: 0.2 }, { task: dyck, weight: 0.8 }], 3);
    const m2 = new Mixture([{ task: sort, weight: 0.2 }, { task: dyck, weight: 0.8 }], 3);
    expect(Array.from(m1.sample(5000).ids)).toEqual(Array.from(m2.sample(5000).ids));
    let zeros = 0;
    for (let i = 0; i < 5000; i++) zeros += m1.choice(i).component === 0 ? 1 : 0;
    expect(zeros / 5000).toBeGreaterThan(0.18);
    expect(zeros / 5000).toBeLessThan(0.22);
    const solo = new Mixture([{ task: sort, weight: 1 }], 99);
    expect(Array.from(solo.sample(17).ids)).toEqual(Array.from(sort.sample(17).ids));
    // Mixed lengths pack into one batch padded to the longest context.
    const batch = new Batcher(m1, 8).next();
    expect(batch.seqLen).toBe(129);
    expect(() => new Mixture([], 1)).toThrow(RangeError);
    expect(() => new Mixture([{ task: sort, weight: 0 }], 1)).toThrow(RangeError);
  });
});

describe('ProceduralLoader (§2.1 epochs) and epoch order', () => {
  it('epoch seeds and the validation-overlap quirk', () => {
    expect(epochSeeds(42, 0)).toEqual({ train: 42, validation: 10042 });
    expect(epochSeeds(42, 3)).toEqual({ train: 45, validation: 10045 });
    const loader = new ProceduralLoader('sort', {}, { batchSize: 64, stepsPerEpoch: 2501 });
    expect([loader.trainSize, loader.validationSize]).toEqual([160064, 640]);
    // Train index 10000 of epoch 0 = validation sample 0 of epoch 0 (same RandomState seed 10042).
    const val = loader.validationSamples(0);
    expect(val).toHaveLength(640);
    expect(Array.from(loader.trainSource(0).sample(10000).ids)).toEqual(Array.from(val[0].ids));
    // Consecutive epochs: the same stream shifted by one index.
    expect(Array.from(loader.trainSource(1).sample(0).ids)).toEqual(Array.from(loader.trainSource(0).sample(1).ids));
  });

  it('epochOrder follows the documented derivation and is a permutation', () => {
    // python: random.seed(42 + (1 << 32) + (0x4F524452 << 64)); o = list(range(10)); random.shuffle(o)
    expect(Array.from(epochOrder(10, 42, 1))).toEqual([8, 3, 6, 0, 9, 4, 1, 7, 5, 2]);
    const big = epochOrder(160064, 42, 0);
    const seen = new Uint8Array(160064);
    for (const i of big) seen[i]++;
    expect(seen.every((c) => c === 1)).toBe(true);
  });

  it('train batches follow the epoch order; validation batches are unshuffled', () => {
    const loader = new ProceduralLoader('set', { seqLength: 8, vocabSize: 10 }, { batchSize: 4, stepsPerEpoch: 3 });
    const batches = [...loader.trainBatches(2)];
    expect(batches).toHaveLength(3);
    const order = epochOrder(12, 42, 2);
    const src = createTask('set', { seqLength: 8, vocabSize: 10, seed: 44 });
    expect(Array.from(batches[1].ids.subarray(17, 34))).toEqual(Array.from(src.sample(order[5]).ids));
    const val = loader.validationBatches(0);
    expect(val).toHaveLength(10);
    expect(Array.from(val[0].ids.subarray(0, 17))).toEqual(Array.from(createTask('set', { seqLength: 8, vocabSize: 10, seed: 10042 }).sample(0).ids));
    const plain = new ProceduralLoader('set', { seqLength: 8, vocabSize: 10 }, { batchSize: 4, stepsPerEpoch: 2, shuffle: false });
    const [b0] = plain.trainBatches(0);
    expect(Array.from(b0.ids.subarray(17, 34))).toEqual(Array.from(createTask('set', { seqLength: 8, vocabSize: 10 }).sample(1).ids));
  });

  it('Dyck: train = first samples of random.seed(seed+e), validation after trainSize samples of seed+1000', () => {
    const loader = new ProceduralLoader('dyck', { k: 4, length: 24 }, { batchSize: 2, stepsPerEpoch: 3, shuffle: false });
    expect([loader.trainSize, loader.validationSize]).toEqual([6, 40]);
    const val = loader.validationSamples(0);
    const stream = createTask('dyck', { k: 4, length: 24, seed: 1042 });
    expect(Array.from(val[0].ids)).toEqual(Array.from(stream.sample(6).ids));
    const [b0] = loader.trainBatches(1);
    expect(Array.from(b0.ids.subarray(0, 24))).toEqual(Array.from(createTask('dyck', { k: 4, length: 24, seed: 43 }).sample(0).ids));
    const store = new StreamStore(createTask('dyck', { k: 4, length: 24 }), 5);
    expect(Array.from(store.sample(4).ids)).toEqual(Array.from(createTask('dyck', { k: 4, length: 24 }).sample(4).ids));
    expect(Array.from(store.sample(4).lossMask)).toEqual(Array.from(createTask('dyck', { k: 4, length: 24 }).sample(4).lossMask));
  });

  it('curriculum: the loader generates at ℓ but pads to the full context', () => {
    const loader = new ProceduralLoader('sort', {}, { batchSize: 2, stepsPerEpoch: 1 });
    const [b] = loader.trainBatches(0, 4);
    expect(b.seqLen).toBe(129);
    expect(b.lossTokens).toBe(8);
    expect(b.ids[9]).toBe(101); // PAD after the 9-token curriculum sample
  });
});

describe('CurriculumSchedule (§2.12)', () => {
  it('grows by 2 from 2 after an epoch at >= 0.99 and resets the best accuracy', () => {
    const c = new CurriculumSchedule(5);
    expect(c.length).toBe(2);
    c.observe(0.5);
    expect(c.endEpoch()).toBe(false);
    c.observe(0.995);
    expect(c.endEpoch()).toBe(true);
    expect([c.length, c.bestAccuracy]).toEqual([4, 0]);
    c.observe(1);
    c.endEpoch();
    expect(c.length).toBe(5); // capped at seq_length
    c.observe(1);
    expect(c.endEpoch()).toBe(false);
  });
});
