// Aggregation of run records into results.json, against hand-computed values, and reading result.json files.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aggregate, firstStepAtLeast, readRunRecords } from '../../src/experiments/aggregate.ts';
import { record, stage1 } from './fixtures.ts';

describe('aggregate', () => {
  it('mean, population std and best (ties → lowest seed) over seeds sorted by seed', () => {
    const res = aggregate(
      [
        record({ arm: 'a', seed: 3, final_accuracy: 0.7 }),
        record({ arm: 'a', seed: 1, final_accuracy: 0.5 }),
        record({ arm: 'a', seed: 2, final_accuracy: 0.7 }),
      ],
      'exp',
    );
    expect(res.experiment).toBe('exp');
    expect(res.arms).toHaveLength(1);
    const a = res.arms[0];
    expect(a.seeds.map((s) => s.seed)).toEqual([1, 2, 3]);
    expect(a.mean).toBeCloseTo(1.9 / 3, 12);
    // deviations -2/15, 1/15, 1/15 → variance (4 + 1 + 1) / 225 / 3 = 2/225
    expect(a.std).toBeCloseTo(Math.sqrt(2 / 225), 12);
    expect(a.best).toEqual({ seed: 2, final_accuracy: 0.7 });
  });

  it('one seed: std 0, best is that seed', () => {
    const a = aggregate([record({ arm: 'a', seed: 7, final_accuracy: 0.25 })], 'e').arms[0];
    expect(a.mean).toBe(0.25);
    expect(a.std).toBe(0);
    expect(a.best).toEqual({ seed: 7, final_accuracy: 0.25 });
  });

  it('curve_stats only at steps every seed reached; NaN points left out of the statistics', () => {
    const a = aggregate(
      [
        record({ arm: 'a', seed: 0, curve: [[0, 0.1], [100, 0.2], [200, 0.3]] }),
        record({ arm: 'a', seed: 1, curve: [[0, 0.3], [100, 0.4], [150, 0.9]] }),
        record({ arm: 'a', seed: 2, curve: [[0, 0.2], [100, NaN], [200, 0.5]] }),
      ],
      'e',
    ).arms[0];
    expect(a.curve_stats.map((r) => r[0])).toEqual([0, 100]);
    const [s0, s100] = a.curve_stats;
    expect(s0[1]).toBeCloseTo(0.2, 12);
    expect(s0[2]).toBeCloseTo(Math.sqrt(0.02 / 3), 12);
    expect(s0[3]).toBe(0.3);
    expect(s100[1]).toBeCloseTo(0.3, 12); // mean of 0.2 and 0.4 (the NaN is skipped)
    expect(s100[2]).toBeCloseTo(0.1, 12);
    expect(s100[3]).toBe(0.4);
  });

  it('groups by (arm, task) in first-appearance order, and sums runs, time and machines', () => {
    const res = aggregate(
      [
        record({ arm: 'dyck', seed: 0, task: 't1', elapsed_s: 5, machine: 'm1' }),
        record({ arm: 'none', role: 'baseline', seed: 0, task: 't1', elapsed_s: 7, machine: 'm2' }),
        record({ arm: 'dyck', seed: 1, task: 't1', elapsed_s: 1, machine: 'm1', completed: false }),
        record({ arm: 'dyck', seed: 0, task: 't2', elapsed_s: 2, machine: 'm1' }),
      ],
      'e',
    );
    expect(res.arms.map((a) => [a.name, a.task, a.seeds.length])).toEqual([
      ['dyck', 't1', 2],
      ['none', 't1', 1],
      ['dyck', 't2', 1],
    ]);
    expect(res.elapsed_s).toBe(15);
    expect(res.machine).toBe('m1; m2');
    expect(res.runs).toEqual({ planned: 4, completed: 3 });
    expect(res.arms[0].seeds[1].completed).toBe(false);
    expect(res.arms[1].role).toBe('baseline');
    expect(res.arms[1].stage1).toBeNull();
  });

  it('stage1: the settings all seeds share, learned only if every seed learned, mean closing accuracy', () => {
    const arms = aggregate(
      [
        record({ arm: 'a', seed: 0, stage1: stage1({ settings: { k: 2, lr: 0.001, seed: 0, mix: { a: 1 } }, closing_accuracy: 0.8 }) }),
        record({ arm: 'a', seed: 1, stage1: stage1({ settings: { k: 2, lr: 0.001, seed: 1, mix: { a: 1 } }, closing_accuracy: 0.9 }) }),
        record({ arm: 'b', seed: 0, stage1: stage1({ learned: true, closing_accuracy: null }) }),
        record({ arm: 'b', seed: 1, stage1: stage1({ learned: false, closing_accuracy: null }) }),
      ],
      'e',
    ).arms;
    expect(arms[0].stage1).toEqual({ k: 2, lr: 0.001, mix: { a: 1 }, learned: true, closing_accuracy: expect.closeTo(0.85, 12) });
    expect(arms[0].stage1!.closing_accuracy).toBeCloseTo(0.85, 12);
    expect(arms[1].stage1!.learned).toBe(false);
    expect(arms[1].stage1!.closing_accuracy).toBeNull();
  });

  it('steps_to_half: the first evaluated step at ≥ 50% (any curve order, NaN skipped), null when never', () => {
    expect(firstStepAtLeast([[0, 0.1], [100, 0.49], [200, 0.5], [300, 0.97]], 0.5)).toBe(200);
    expect(firstStepAtLeast([[300, 0.97], [200, 0.6], [100, NaN], [0, 0.1]], 0.5)).toBe(200);
    expect(firstStepAtLeast([[0, 0.1], [100, 0.3]], 0.5)).toBeNull();
    expect(firstStepAtLeast([], 0.5)).toBeNull();
    const r = aggregate([record({ arm: 'a', seed: 0, curve: [[0, 0.02], [500, 0.3], [1000, 0.8]] }), record({ arm: 'a', seed: 1, curve: [[0, 0.02], [500, 0.3], [1000, 0.31]] })], 'e');
    expect(r.arms[0]!.seeds.map((s) => s.steps_to_half)).toEqual([1000, null]);
  });

  it('no records → no arms', () => {
    expect(aggregate([], 'e')).toEqual({ experiment: 'e', arms: [], elapsed_s: 0, machine: '', runs: { planned: 0, completed: 0 } });
  });
});

describe('readRunRecords', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'kindling-agg-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  const put = (path: string, text: string) => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
  };

  it('finds result.json at any depth under runs/, in natural name order, and turns JSON nulls into NaN', () => {
    const d = tmp();
    const r0 = record({ arm: 'dyck', seed: 0 });
    const r2 = record({ arm: 'dyck', seed: 2 });
    const r10 = { ...record({ arm: 'dyck', seed: 10 }), final_accuracy: null, curve: [[0, null], [100, 0.5]] };
    put(join(d, 'runs', 'dyck', 'seed10', 'result.json'), JSON.stringify(r10));
    put(join(d, 'runs', 'dyck', 'seed2', 'result.json'), JSON.stringify(r2));
    put(join(d, 'runs', 'dyck', 'seed0', 'stage2', 'deeper', 'result.json'), JSON.stringify(r0));
    put(join(d, 'runs', 'dyck', 'seed0', 'metrics.jsonl'), '{}\n');
    put(join(d, 'result.json'), 'not read: outside runs/');
    const recs = readRunRecords(d);
    expect(recs.map((r) => r.seed)).toEqual([0, 2, 10]);
    expect(recs[0]).toEqual(r0);
    expect(recs[2].final_accuracy).toBeNaN();
    expect(recs[2].curve[0][1]).toBeNaN();
    expect(recs[2].curve[1]).toEqual([100, 0.5]);
  });

  it('a malformed file: the error names the file and the JSON error', () => {
    const d = tmp();
    put(join(d, 'runs', 'a', 'result.json'), JSON.stringify(record({ arm: 'a', seed: 0 })));
    const bad = join(d, 'runs', 'b', 'seed1', 'result.json');
    put(bad, '{"arm": "b", "seed": ');
    expect(() => readRunRecords(d)).toThrow(bad);
    expect(() => readRunRecords(d)).toThrow(/malformed JSON \(.*JSON/);
  });

  it('a JSON file that is not a run record names the file and the field', () => {
    const d = tmp();
    const bad = join(d, 'runs', 'x', 'result.json');
    put(bad, JSON.stringify({ arm: 'x', seed: 0, task: 't', role: 'weird' }));
    expect(() => readRunRecords(d)).toThrow(`${bad}: not a run record (\`role\` must be one of baseline, procedural, shuffled)`);
  });

  it('no runs/ directory → []', () => {
    expect(readRunRecords(tmp())).toEqual([]);
  });
});
