// WW, ECA, the shuffled control and the registry (vocab / context length / config validation).
// Golden sequences come from independent Python re-implementations of §2.9–2.11 and of our documented
// shuffle derivation (numpy 2.4.6 + CPython 3.11.7); the one-liners are quoted next to each constant.
import { describe, expect, it } from 'vitest';
import {
  TASK_NAMES,
  contextLength,
  controlStream,
  createTask,
  lossPositions,
  modelVocabSize,
  resolveConfig,
  SHUFFLE_SALT,
  ecaStep,
  validateSample,
  type TaskName,
} from '../../src/data/procedural/index.ts';

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('ww (§2.9)', () => {
  it('is w ‖ w with loss on the copy', () => {
    // w = np.random.RandomState(42).randint(1, 10, size=8).tolist(); w + w
    const s = createTask('ww', { seqLength: 8, vocabSize: 10 }).sample(0);
    expect(Array.from(s.ids)).toEqual([7, 4, 8, 5, 7, 3, 7, 8, 7, 4, 8, 5, 7, 3, 7, 8]);
    expect(lossPositions(s)).toEqual(range(7, 14));
    expect(Array.from(s.targets).at(-1)).toBe(11);
    expect(s.attentionMask.every((m) => m === 1)).toBe(true);
  });
  it('lossOnAll gives Dyck-style loss', () => {
    const s = createTask('ww', { seqLength: 8, vocabSize: 10, lossOnAll: true }).sample(0);
    expect(lossPositions(s)).toEqual(range(0, 14));
  });
});

describe('uniform (ours: the no-structure control)', () => {
  it('is L independent draws from 1..V-1 with loss on all positions but the last', () => {
    // np.random.RandomState(42).randint(1, 17, size=8).tolist(); sample idx 3: RandomState(45)
    const task = createTask('uniform', { seqLength: 8, vocabSize: 17 });
    const s = task.sample(0);
    expect(Array.from(s.ids)).toEqual([7, 4, 13, 15, 11, 8, 13, 5]);
    expect(Array.from(task.sample(3).ids)).toEqual([12, 15, 4, 13, 1, 16, 14, 6]);
    expect(lossPositions(s)).toEqual(range(0, 6));
    expect(Array.from(s.targets)).toEqual([4, 13, 15, 11, 8, 13, 5, 18]);
    expect(s.attentionMask.every((m) => m === 1)).toBe(true);
    expect([task.vocabSize, task.contextLength, task.padId, task.sepId]).toEqual([19, 8, 18, undefined]);
  });
  it('needs L >= 2 to train on anything', () => {
    expect(lossPositions(createTask('uniform', { seqLength: 1 }).sample(0))).toEqual([]);
  });
  it('is a control stream, as every shuffled task is; the structured tasks are not', () => {
    expect(controlStream('uniform', false)).toBe('the uniform control');
    expect(controlStream('dyck', true)).toBe('the shuffled control');
    expect(TASK_NAMES.filter((n) => controlStream(n, false) !== null)).toEqual(['uniform']);
  });
});

describe('eca (§2.10)', () => {
  // Python reference used for both constants:
  //   def eca(seed, L, rule, rows, burn):
  //       s = np.random.RandomState(seed).randint(0, 2, size=L).tolist()
  //       step = lambda s: [(rule >> (4*s[i-1] + 2*s[i] + s[(i+1) % L])) & 1 for i in range(L)]
  //       for _ in range(burn): s = step(s)
  //       ids = list(s)
  //       for r in range(1, rows): s = step(s); ids += [2] + s
  //       return ids
  it('rule 110, L 16, three rows (eca(42, 16, 110, 3, 0))', () => {
    const s = createTask('eca', { seqLength: 16, rows: 3 }).sample(0);
    expect(Array.from(s.ids)).toEqual([
      0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 2, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 2, 1, 1, 0, 1, 1,
      1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1,
    ]);
    // Loss on every position whose target is a cell of row >= 1: 16..31 and 33..48.
    expect(lossPositions(s)).toEqual([...range(16, 31), ...range(33, 48)]);
  });
  it('rule 30 with burn-in 5, sample idx 2 (eca(44, 12, 30, 2, 5))', () => {
    const s = createTask('eca', { seqLength: 12, rule: 30, burnIn: 5 }).sample(2);
    expect(Array.from(s.ids)).toEqual([1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 2, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0]);
    expect(lossPositions(s)).toEqual(range(12, 23));
  });
  it('rule 110 truth table (111..000 -> 0,1,1,0,1,1,1,0)', () => {
    // Each neighbourhood is placed at cells 0..2 of an otherwise-zero ring of 8; cell 1's next state is the rule bit.
    const expected: Record<string, number> = { '111': 0, '110': 1, '101': 1, '100': 0, '011': 1, '010': 1, '001': 1, '000': 0 };
    for (const [nb, bit] of Object.entries(expected)) {
      const row = [Number(nb[0]), Number(nb[1]), Number(nb[2]), 0, 0, 0, 0, 0];
      const next = new Array<number>(8);
      ecaStep(row, 110, next);
      expect(next[1], nb).toBe(bit);
    }
    // Periodic boundary: cell L-1's right neighbour is cell 0 (001 -> 1 under rule 110) and cell 0's left
    // neighbour is cell L-1 (100 -> 1 under rule 30).
    const next = new Array<number>(4);
    ecaStep([1, 0, 0, 0], 110, next);
    expect(next).toEqual([1, 0, 0, 1]);
    ecaStep([0, 0, 0, 1], 30, next);
    expect(next).toEqual([1, 0, 1, 1]);
  });
  it('vocab 4, context T·L + T - 1', () => {
    expect(createTask('eca').vocabSize).toBe(4);
    expect(createTask('eca').contextLength).toBe(129);
    expect(createTask('eca', { rows: 4, seqLength: 10 }).contextLength).toBe(43);
  });
});

describe('shuffled control (§2.11)', () => {
  it('uses the documented derivation: random.seed((seed + idx) + (SALT << 32)); random.shuffle(non-PAD tokens)', () => {
    expect(SHUFFLE_SALT).toBe(0x53485546);
    // python: x = sort sample (RandomState(42), L 8, V 10); shuffled(x, 11, 42 + (SHUF << 32))
    const s = createTask('sort', { seqLength: 8, vocabSize: 10, shuffled: true }).sample(0);
    expect(Array.from(s.ids)).toEqual([10, 3, 8, 8, 5, 7, 4, 7, 4, 8, 3, 7, 7, 8, 7, 5, 7]);
    expect(Array.from(s.targets)).toEqual([...Array.from(s.ids).slice(1), 11]);
    expect(lossPositions(s)).toEqual(range(8, 15));
    // python: shuffled(set sample of RandomState(43), 11, 43 + (SHUF << 32)) — PAD slots stay in place
    const t = createTask('set', { seqLength: 8, vocabSize: 10, shuffled: true }).sample(1);
    expect(Array.from(t.ids)).toEqual([1, 2, 5, 1, 5, 4, 1, 2, 10, 3, 3, 2, 4, 6, 6, 11, 11]);
    expect(lossPositions(t)).toEqual(range(8, 13));
    expect(Array.from(t.attentionMask)).toEqual([...new Array(15).fill(1), 0, 0]);
  });
  it('Dyck streams: random.seed(seed + (idx << 32) + (SALT << 64)), whole sequence permuted', () => {
    const task = createTask('dyck', { k: 4, length: 24, shuffled: true });
    // python: shuffled(dyck call 1, 8, 42 + (0 << 32) + (SHUF << 64)) and call 2 with idx 1
    expect(Array.from(task.sample(0).ids)).toEqual([0, 4, 5, 1, 0, 6, 5, 0, 6, 2, 3, 5, 1, 1, 7, 5, 2, 6, 4, 0, 4, 4, 1, 2]);
    expect(Array.from(task.sample(1).ids)).toEqual([1, 4, 2, 2, 2, 5, 6, 2, 4, 5, 7, 0, 6, 6, 3, 0, 4, 7, 3, 0, 4, 0, 6, 1]);
    expect(lossPositions(task.sample(1))).toEqual(range(0, 22));
  });
  it('every task has a shuffled variant with the same loss positions and vocab', () => {
    for (const name of TASK_NAMES) {
      const small = name === 'dyck' || name === 'dyck_shuffle' ? { k: 8, length: 64 } : { seqLength: 16 };
      const plain = createTask(name, small);
      const shuf = createTask(name, { ...small, shuffled: true });
      expect(shuf.vocabSize).toBe(plain.vocabSize);
      expect(shuf.contextLength).toBe(plain.contextLength);
      const a = plain.sample(3);
      const b = shuf.sample(3);
      expect(Array.from(b.lossMask)).toEqual(Array.from(a.lossMask));
      expect(Array.from(b.ids)).not.toEqual(Array.from(a.ids));
    }
  });
});

describe('registry', () => {
  it('model vocab and context length per §2.1', () => {
    const expected: Record<TaskName, [number, number]> = {
      sort: [102, 129],
      reverse: [102, 129],
      identity: [102, 129],
      set: [102, 129],
      union: [102, 130],
      delete: [102, 131],
      stack: [102, 129],
      dyck: [129, 2048],
      dyck_shuffle: [129, 2048],
      ww: [102, 128],
      eca: [4, 129],
      uniform: [102, 64],
    };
    for (const name of TASK_NAMES) {
      const task = createTask(name);
      expect([task.vocabSize, task.contextLength], name).toEqual(expected[name]);
      const cfg = resolveConfig(name);
      expect([modelVocabSize(name, cfg), contextLength(name, cfg)]).toEqual(expected[name]);
    }
    expect(createTask('dyck', { k: 4, length: 24 }).vocabSize).toBe(9);
    expect(createTask('union', { seqLength: 8, vocabSize: 10 }).contextLength).toBe(18);
    expect(createTask('delete', { seqLength: 8, vocabSize: 10 }).contextLength).toBe(19);
  });

  it('samples never exceed the context length; stack is 2L long with context 2L+1', () => {
    for (const name of TASK_NAMES) {
      const small = name === 'dyck' || name === 'dyck_shuffle' ? { k: 8, length: 100 } : { seqLength: 13 };
      const task = createTask(name, small);
      for (let i = 0; i < 5; i++) expect(task.sample(i).ids.length).toBeLessThanOrEqual(task.contextLength);
    }
    expect(createTask('stack').sample(0).ids.length).toBe(128);
    expect(createTask('union', { seqLength: 13 }).sample(0).ids.length).toBe(2 * 6 + 2 + 13);
  });

  it('rejects bad configs and indices', () => {
    expect(() => createTask('sort', { seqLength: 0 })).toThrow(RangeError);
    expect(() => createTask('stack', { vocabSize: 2 })).toThrow(RangeError);
    expect(() => createTask('eca', { rule: 256 })).toThrow(RangeError);
    expect(() => createTask('dyck', { pOpen: 1.5 })).toThrow(RangeError);
    expect(() => createTask('sort', { seed: -1 })).toThrow(RangeError);
    expect(() => createTask('sort', { curriculumLength: 65 })).toThrow(RangeError);
    expect(() => createTask('nope' as TaskName)).toThrow(RangeError);
    expect(() => createTask('sort', { k: 4 } as never)).toThrow(/unknown option 'k'/);
    expect(() => createTask('sort').sample(-1)).toThrow(RangeError);
    expect(() => createTask('sort', { seed: 2 ** 32 - 1 }).sample(1)).toThrow(RangeError);
  });

  it('curriculum length generates short samples but keeps the full model shape (§2.12)', () => {
    const task = createTask('sort', { curriculumLength: 4 });
    const s = task.sample(0);
    expect(s.ids.length).toBe(9);
    expect(lossPositions(s)).toEqual([4, 5, 6, 7]);
    expect(task.contextLength).toBe(129);
    expect(validateSample(task, s)).toEqual([]);
    // Same RNG stream: the 4 inputs are the first 4 draws of RandomState(42).
    expect(Array.from(s.ids.subarray(0, 4))).toEqual([52, 93, 15, 72]);
    expect(Array.from(createTask('union', { curriculumLength: 2 }).sample(0).ids)).toEqual([52, 100, 93, 100, 52, 93]);
  });
});
