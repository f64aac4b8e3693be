// Property tests: the structural invariants of every generator hold over many seeds and configs, and
// the invariant checkers reject corrupted samples.
import { describe, expect, it } from 'vitest';
import {
  TASK_NAMES,
  createTask,
  dyckPrefixDepth,
  ecaRowsFollowRule,
  isBalancedDyck,
  isDuplicateFree,
  isShuffleDyckPrefix,
  isSortedAscending,
  maxDepth,
  sameMultiset,
  shuffleKeepsMultiset,
  validateSample,
  type Sample,
  type TaskConfigs,
  type TaskName,
} from '../../src/data/procedural/index.ts';

const SEEDS = Array.from({ length: 200 }, (_, i) => 1000 + 7919 * i);

function smallConfig(name: TaskName, i: number): Partial<TaskConfigs[TaskName]> {
  if (name === 'dyck' || name === 'dyck_shuffle') return { k: 1 + (i % 9), length: 2 * (8 + (i % 60)), maxDepth: 1 + (i % 20) };
  if (name === 'eca') return { seqLength: 3 + (i % 40), rule: (i * 37) % 256, rows: 2 + (i % 4), burnIn: i % 5 };
  // Cycle through lengths (incl. odd ones) and tiny vocabularies that exhaust the stack's candidates.
  return { seqLength: 1 + (i % 70), vocabSize: (name === 'stack' ? 3 : 2) + (i % 120) };
}

describe('every generator satisfies its invariants over 200 seeds', () => {
  for (const name of TASK_NAMES) {
    it(`${name}: default config and varied configs`, () => {
      for (let i = 0; i < SEEDS.length; i++) {
        const def = createTask(name, { seed: SEEDS[i] } as Partial<TaskConfigs[TaskName]>);
        if (def.randomAccess || i < 20) expect(validateSample(def, def.sample(0))).toEqual([]);
        const task = createTask(name, { ...smallConfig(name, i), seed: SEEDS[i] });
        const s = task.sample(i % 3);
        expect(validateSample(task, s), `${name} seed ${SEEDS[i]} ${JSON.stringify(task.config)}`).toEqual([]);
      }
    });
  }
});

describe('specific invariants', () => {
  it('Dyck words (even n) are balanced; odd n gives a valid prefix', () => {
    for (const seed of SEEDS) {
      const task = createTask('dyck', { seed, k: 16, length: 256 });
      const ids = task.sample(0).ids;
      expect(isBalancedDyck(ids, 16)).toBe(true);
      const odd = createTask('dyck', { seed, k: 3, length: 31 }).sample(0).ids;
      expect(dyckPrefixDepth(odd, 3)).toBeGreaterThanOrEqual(1);
    }
  });

  it('Dyck-shuffle depth never exceeds max_depth', () => {
    for (const [i, seed] of SEEDS.entries()) {
      const cap = [1, 2, 4, 16][i % 4];
      const ids = createTask('dyck_shuffle', { seed, k: 8, length: 512, maxDepth: cap }).sample(0).ids;
      expect(isShuffleDyckPrefix(ids, 8, cap)).toBe(true);
      expect(maxDepth(ids, 8)).toBeLessThanOrEqual(cap);
    }
    // With the default cap 16 and p_open 0.5 the cap is actually reached in long sequences.
    const ids = createTask('dyck_shuffle', { pOpen: 0.9, length: 512 }).sample(0).ids;
    expect(maxDepth(ids, 64)).toBe(16);
  });

  it('sort outputs are sorted, set outputs duplicate-free', () => {
    for (const seed of SEEDS) {
      const s = createTask('sort', { seed }).sample(0);
      expect(isSortedAscending(s.ids.subarray(65))).toBe(true);
      expect(sameMultiset(s.ids.subarray(0, 64), s.ids.subarray(65))).toBe(true);
      const t = createTask('set', { seed }).sample(0);
      const out = Array.from(t.ids.subarray(65)).filter((x) => x !== 101);
      expect(isDuplicateFree(out)).toBe(true);
      expect(new Set(t.ids.subarray(0, 64)).size).toBe(out.length);
    }
  });

  it('ECA rows follow the rule', () => {
    for (const [i, seed] of SEEDS.entries()) {
      const rule = [110, 30, 90, 184, i % 256][i % 5];
      const ids = createTask('eca', { seed, rule, rows: 3, seqLength: 32 }).sample(0).ids;
      expect(ecaRowsFollowRule(ids, 32, 3, rule)).toBe(true);
    }
  });

  it('shuffled samples keep the token multiset (and the PAD slots) of the original', () => {
    for (const name of TASK_NAMES) {
      for (const seed of SEEDS.slice(0, name.startsWith('dyck') ? 40 : 200)) {
        const small = name.startsWith('dyck') ? { k: 8, length: 128, seed } : { seed };
        const plain = createTask(name, small);
        const shuf = createTask(name, { ...small, shuffled: true });
        const a = plain.sample(1);
        const b = shuf.sample(1);
        expect(shuffleKeepsMultiset(a, b, plain.padId), `${name} ${seed}`).toBe(true);
        expect(validateSample(shuf, b)).toEqual([]);
      }
    }
  });
});

describe('the checkers reject corrupted samples', () => {
  const corrupt = (s: Sample, pos: number, value: number): Sample => {
    const ids = s.ids.slice();
    ids[pos] = value;
    const targets = s.targets.slice();
    if (pos > 0) targets[pos - 1] = value;
    return { ...s, ids, targets };
  };

  it('task checks', () => {
    const sort = createTask('sort', { seqLength: 8, vocabSize: 10 });
    const s = sort.sample(0); // output 3 4 5 7 7 7 8 8 at 9..16
    expect(validateSample(sort, corrupt(s, 9, 9)).length).toBeGreaterThan(0);
    const set = createTask('set', { seqLength: 8, vocabSize: 10 });
    expect(validateSample(set, corrupt(set.sample(0), 10, 7)).length).toBeGreaterThan(0);
    const stack = createTask('stack', { seqLength: 8, vocabSize: 10 });
    expect(validateSample(stack, corrupt(stack.sample(0), 9, 4)).length).toBeGreaterThan(0);
    const eca = createTask('eca', { seqLength: 8 });
    const e = eca.sample(0);
    expect(validateSample(eca, corrupt(e, 10, 1 - e.ids[10])).length).toBeGreaterThan(0);
    const ww = createTask('ww', { seqLength: 8, vocabSize: 10 });
    expect(validateSample(ww, corrupt(ww.sample(0), 15, 1)).length).toBeGreaterThan(0);
    const uniform = createTask('uniform', { seqLength: 8, vocabSize: 10 });
    expect(validateSample(uniform, corrupt(uniform.sample(0), 3, 10))).toEqual(['uniform: a token outside the content range 1..9']);
    expect(validateSample(uniform, { ...uniform.sample(0), lossMask: new Uint8Array(8).fill(1, 1, 7) })).toEqual(['uniform: loss is not on all positions but the last']);
    // A broken target shift is structural.
    const bad = { ...s, targets: s.targets.slice().fill(0) };
    expect(validateSample(sort, bad).join()).toMatch(/targets/);
  });

  it('predicates', () => {
    expect(isBalancedDyck([0, 1, 3, 2], 2)).toBe(true);
    expect(isBalancedDyck([0, 1, 2, 3], 2)).toBe(false); // crossing: not Dyck
    expect(isShuffleDyckPrefix([0, 1, 2, 3], 2)).toBe(true); // but a valid shuffle-Dyck word
    expect(isShuffleDyckPrefix([0, 0, 0], 2, 2)).toBe(false); // depth 3 > 2
    expect(isShuffleDyckPrefix([1, 2], 2)).toBe(false); // closes a type that is not open
    expect(isSortedAscending([1, 2, 2, 1])).toBe(false);
    expect(isDuplicateFree([1, 2, 1])).toBe(false);
    expect(sameMultiset([1, 2, 2], [2, 1, 2])).toBe(true);
    expect(sameMultiset([1, 2, 2], [1, 1, 2])).toBe(false);
    expect(ecaRowsFollowRule([0, 0, 1, 2, 0, 1, 1], 3, 2, 110)).toBe(true);
    expect(ecaRowsFollowRule([0, 0, 1, 2, 1, 1, 1], 3, 2, 110)).toBe(false);
  });
});
