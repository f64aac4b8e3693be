// Spec §11 test vectors (produced by running the reference generators), reproduced exactly.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTask, lossPositions, type Sample, type TaskName } from '../../src/data/procedural/index.ts';

const sha16 = (ids: Int32Array) => createHash('sha256').update(Array.from(ids).join(',')).digest('hex').slice(0, 16);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

function expectShifted(s: Sample, pad: number) {
  expect(Array.from(s.targets)).toEqual([...Array.from(s.ids).slice(1), pad]);
}

describe('§11 algorithmic generators, L = 8, V = 10 (SEP 10, PAD 11)', () => {
  const table: [TaskName, number, number[], number, number][] = [
    ['sort', 0, [7, 4, 8, 5, 7, 3, 7, 8, 10, 3, 4, 5, 7, 7, 7, 8, 8], 8, 15],
    ['sort', 1, [5, 1, 2, 6, 1, 4, 2, 3, 10, 1, 1, 2, 2, 3, 4, 5, 6], 8, 15],
    ['reverse', 0, [7, 4, 8, 5, 7, 3, 7, 8, 10, 8, 7, 3, 7, 5, 8, 4, 7], 8, 15],
    ['identity', 0, [7, 4, 8, 5, 7, 3, 7, 8, 10, 7, 4, 8, 5, 7, 3, 7, 8], 8, 15],
    ['set', 0, [7, 4, 8, 5, 7, 3, 7, 8, 10, 7, 4, 8, 5, 3, 11, 11, 11], 8, 12],
    ['set', 1, [5, 1, 2, 6, 1, 4, 2, 3, 10, 5, 1, 2, 6, 4, 3, 11, 11], 8, 13],
    ['union', 0, [7, 4, 8, 5, 10, 7, 3, 7, 8, 10, 7, 4, 8, 5, 3, 11, 11, 11], 9, 13],
    ['delete', 0, [7, 4, 8, 5, 7, 3, 7, 8, 10, 5, 10, 7, 4, 8, 7, 3, 7, 8, 11], 10, 16],
    ['delete', 1, [5, 1, 2, 6, 1, 4, 2, 3, 10, 8, 10, 5, 1, 2, 6, 1, 4, 2, 3], 10, 17],
    ['stack', 0, [7, 4, 0, 3, 0, 5, 0, 3, 10, 3, 7, 11, 11, 11, 11, 11], 8, 9],
    ['stack', 1, [5, 1, 8, 6, 7, 0, 0, 0, 10, 1, 5, 11, 11, 11, 11, 11], 8, 9],
  ];
  for (const [name, idx, ids, first, last] of table) {
    it(`${name} ${idx}`, () => {
      const s = createTask(name, { seqLength: 8, vocabSize: 10 }).sample(idx);
      expect(Array.from(s.ids)).toEqual(ids);
      expect(lossPositions(s)).toEqual(range(first, last));
      expectShifted(s, 11);
      const expectedAttention = name === 'stack' ? ids.map(() => 1) : ids.map((t) => (t === 11 ? 0 : 1));
      expect(Array.from(s.attentionMask)).toEqual(expectedAttention);
    });
  }
  it('delete 0 removes r = 5 and delete 1 has r = 8 absent', () => {
    const task = createTask('delete', { seqLength: 8, vocabSize: 10 });
    expect(task.sample(0).ids[9]).toBe(5);
    expect(task.sample(1).ids[9]).toBe(8);
  });
});

describe('§11 algorithmic generators, L = 64, V = 100', () => {
  const table: [TaskName, number, number, number, number, string][] = [
    ['sort', 0, 129, 64, 127, 'dd2ed1351749e8b6'],
    ['sort', 1, 129, 64, 127, '63d117a65ebc825f'],
    ['reverse', 0, 129, 64, 127, '970b0d1b8beaa839'],
    ['identity', 0, 129, 64, 127, '6452a833d3588392'],
    ['set', 0, 129, 64, 108, 'a70a9bbbec5ee112'],
    ['union', 0, 130, 65, 109, '5a73577d0f24638e'],
    ['delete', 0, 131, 66, 128, '28d3a0661c156ff5'],
    ['stack', 0, 128, 64, 71, '3649d66d4c31f52b'],
    ['stack', 1, 128, 64, 69, 'c256c7bf79863d33'],
  ];
  for (const [name, idx, length, first, last, hash] of table) {
    it(`${name} ${idx}: length ${length}, loss ${first}..${last}, sha16 ${hash}`, () => {
      const s = createTask(name).sample(idx);
      expect(s.ids.length).toBe(length);
      expect(lossPositions(s)).toEqual(range(first, last));
      expect(sha16(s.ids)).toBe(hash);
      expectShifted(s, 101);
    });
  }
  it('idx-0 prefixes', () => {
    for (const name of ['sort', 'reverse', 'identity', 'set', 'delete'] as const) {
      expect(Array.from(createTask(name).sample(0).ids.subarray(0, 12))).toEqual([52, 93, 15, 72, 61, 21, 83, 87, 75, 75, 88, 24]);
    }
    expect(Array.from(createTask('stack').sample(0).ids.subarray(0, 12))).toEqual([52, 94, 73, 85, 77, 0, 24, 55, 0, 0, 65, 0]);
  });
});

describe('§11 Dyck and Dyck-shuffle (random.seed(42), p_open 0.5, one stream)', () => {
  it('dyck k 4, n 24: calls 1 and 2', () => {
    const task = createTask('dyck', { k: 4, length: 24 });
    const [a, b] = task.samples(0, 2);
    expect(Array.from(a.ids)).toEqual([0, 2, 1, 5, 6, 4, 0, 4, 0, 1, 0, 4, 5, 4, 3, 2, 6, 1, 5, 1, 2, 6, 5, 7]);
    expect(Array.from(b.ids)).toEqual([0, 0, 2, 6, 4, 4, 0, 4, 3, 2, 6, 7, 2, 6, 0, 1, 5, 4, 1, 5, 3, 2, 6, 7]);
    expect(lossPositions(a)).toEqual(range(0, 22));
    expectShifted(a, 8);
    expect(a.attentionMask.every((m) => m === 1)).toBe(true);
  });
  it('dyck_shuffle k 4, n 24, max_depth 16', () => {
    const s = createTask('dyck_shuffle', { k: 4, length: 24, maxDepth: 16 }).sample(0);
    expect(Array.from(s.ids)).toEqual([0, 2, 1, 6, 4, 5, 0, 1, 4, 5, 1, 2, 5, 6, 3, 1, 2, 3, 2, 5, 6, 7, 2, 7]);
    expect(lossPositions(s)).toEqual(range(0, 22));
  });
  it('dyck k 64, n 2048: samples 0 and 1', () => {
    const task = createTask('dyck');
    const s0 = task.sample(0);
    const s1 = task.sample(1);
    expect(Array.from(s0.ids.subarray(0, 16))).toEqual([14, 35, 17, 81, 99, 78, 11, 75, 4, 27, 3, 67, 91, 68, 53, 35]);
    expect(sha16(s0.ids)).toBe('3d70da13352a841d');
    expect(sha16(s1.ids)).toBe('ed93a7c7a65d0978');
    expectShifted(s0, 128);
    expect(task.vocabSize).toBe(129);
    expect(task.contextLength).toBe(2048);
  });
  it('dyck_shuffle k 64, n 2048: samples 0 and 1', () => {
    const task = createTask('dyck_shuffle');
    const s0 = task.sample(0);
    expect(Array.from(s0.ids.subarray(0, 16))).toEqual([14, 35, 17, 99, 78, 81, 3, 29, 67, 93, 28, 35, 92, 99, 54, 19]);
    expect(sha16(s0.ids)).toBe('392023cf09066a6a');
    expect(sha16(task.sample(1).ids)).toBe('bc83b4cf8312f43b');
  });
  it('random access into the stream replays it (backwards, forwards, skipping)', () => {
    const task = createTask('dyck', { k: 4, length: 24 });
    const s1 = Array.from(task.sample(1).ids);
    const s0 = Array.from(task.sample(0).ids);
    expect(s0[3]).toBe(5);
    expect(Array.from(task.sample(1).ids)).toEqual(s1);
    const fresh = createTask('dyck', { k: 4, length: 24 });
    expect(Array.from(fresh.sample(1).ids)).toEqual(s1);
  });
  it('sample 0 of dyck k 64 reaches depth 39 (uncapped)', () => {
    const ids = createTask('dyck').sample(0).ids;
    let depth = 0;
    let max = 0;
    for (const t of ids) {
      depth += t < 64 ? 1 : -1;
      max = Math.max(max, depth);
    }
    expect(max).toBe(39);
    expect(depth).toBe(0);
  });
});
