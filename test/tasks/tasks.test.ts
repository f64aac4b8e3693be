// The downstream task generators (src/data/tasks) against the spec's §11 vectors and against the
// independent Python reference (test/tasks/reference_tasks.py → golden.json, CPython 3.11 `random`).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PyRandom } from '../../src/util/random.ts';
import {
  DOWNSTREAM_FAMILIES,
  PAPER_TASK_IDS,
  createDownstreamTask,
  isDownstreamTaskId,
  type DownstreamTask,
} from '../../src/data/tasks/index.ts';

interface GoldenSample {
  ids: number[];
  wanted: number[];
  wanted_fixed: number[];
}
const golden = JSON.parse(readFileSync(new URL('./golden.json', import.meta.url), 'utf8')) as {
  samples: Record<string, Record<string, GoldenSample[]>>;
};

const positions = (w: Uint8Array): number[] => Array.from(w.keys()).filter((p) => w[p] === 1);
const first = (id: string, seed = 42): Int32Array => createDownstreamTask(id).genSingle(new PyRandom(seed));

describe('§11 vectors: random.seed(42), then the first gen_single()', () => {
  it('needle condattendstream_30: 21 pairs, query 184 (key 26), answer 36, 19 zeros', () => {
    const ids = first('condattendstream_30');
    expect(Array.from(ids)).toEqual([
      147, 76, 142, 36, 138, 104, 152, 112, 155, 1, 134, 98, 133, 104, 140, 21, 139, 90, 143, 55, 137, 44, 154, 36, 148, 20, 150, 28,
      144, 123, 156, 98, 129, 44, 141, 14, 146, 12, 130, 49, 145, 13, 184, 36, ...new Array(19).fill(0),
    ]);
    expect(positions(createDownstreamTask('condattendstream_30').wanted(ids))).toEqual([42]);
  });

  it('reversed addition additionstream_10: 9697354961 + 2051802512 = 11749157473', () => {
    const ids = first('additionstream_10');
    expect(Array.from(ids)).toEqual([1, 6, 9, 4, 5, 3, 7, 9, 6, 9, 10, 2, 1, 5, 2, 0, 8, 1, 5, 0, 2, 11, 23, 27, 24, 27, 25, 21, 29, 24, 27, 21, 21, 30]);
    expect(ids.length).toBe(34);
  });

  it('forward addition forwardaddition_5: 13278 + 42098 = 55376', () => {
    expect(Array.from(first('forwardaddition_5'))).toEqual([1, 3, 2, 7, 8, 10, 4, 2, 0, 9, 8, 11, 25, 25, 23, 27, 26, 30, 12]);
  });

  it('multiplication_5: 13278 × 42098 = 558977244, then 7 × PAD 12', () => {
    expect(Array.from(first('multiplication_5'))).toEqual([
      1, 3, 2, 7, 8, 10, 4, 2, 0, 9, 8, 11, 25, 25, 28, 29, 27, 27, 22, 24, 24, 30, 12, 12, 12, 12, 12, 12, 12,
    ]);
  });
});

describe('golden samples from the Python reference (first 5 gen_single() after seeds 0, 1, 7, 42)', () => {
  for (const [id, perSeed] of Object.entries(golden.samples)) {
    it(id, () => {
      const task = createDownstreamTask(id);
      const fixed = createDownstreamTask(id, { fixQuirks: true });
      for (const [seed, samples] of Object.entries(perSeed)) {
        const rng = new PyRandom(Number(seed));
        for (const g of samples) {
          const ids = task.genSingle(rng);
          expect(Array.from(ids), `${id} seed ${seed}`).toEqual(g.ids);
          expect(positions(task.wanted(ids))).toEqual(g.wanted);
          expect(positions(fixed.wanted(ids))).toEqual(g.wanted_fixed);
        }
      }
    });
  }
  it('covers every family', () => {
    const families = new Set(Object.keys(golden.samples).map((id) => id.replace(/_\d+$/, '')));
    expect([...families].sort()).toEqual([...DOWNSTREAM_FAMILIES].sort());
  });
});

function sweep(task: DownstreamTask, count: number, seed = 3): Int32Array[] {
  const rng = new PyRandom(seed);
  return Array.from({ length: count }, () => task.genSingle(rng));
}

describe('layouts and wanted positions over many samples', () => {
  it('needle: exactly one wanted position, at the query; the target is the value of the queried key', () => {
    const task = createDownstreamTask('condattendstream_30');
    const problems: string[] = [];
    for (const ids of sweep(task, 300)) {
      const w = positions(task.wanted(ids));
      const p = w[0]!;
      const key = ids[p]! - 158;
      const at = Array.from(ids.subarray(0, p)).findIndex((t, i) => i % 2 === 0 && t === key + 128);
      const pairsOk = Array.from({ length: p / 2 }, (_, i) => ids[2 * i]! >= 128 && ids[2 * i]! < 158 && ids[2 * i + 1]! >= 1 && ids[2 * i + 1]! <= 127);
      const ok =
        w.length === 1 &&
        p % 2 === 0 &&
        ids[p]! >= 158 &&
        ids[p]! <= 187 &&
        at >= 0 &&
        ids[p + 1] === ids[at + 1] &&
        pairsOk.every(Boolean) &&
        ids.subarray(p + 2).every((t) => t === 0);
      if (!ok) problems.push(Array.from(ids).join(','));
    }
    expect(problems).toEqual([]);
  });

  it('reversed addition: 11 wanted per sequence, 12 with fixQuirks; the digits add up', () => {
    const task = createDownstreamTask('additionstream_10');
    const fixed = createDownstreamTask('additionstream_10', { fixQuirks: true });
    for (const ids of sweep(task, 300)) {
      expect(positions(task.wanted(ids))).toHaveLength(11);
      const wf = positions(fixed.wanted(ids));
      expect(wf).toHaveLength(12);
      expect(ids[wf[0]!]).toBe(11); // the '=' position predicts the first sum digit
      const num = (ds: Int32Array) => BigInt([...ds].reverse().join(''));
      const a = num(ids.subarray(0, 10));
      const b = num(ids.subarray(11, 21));
      const stop = ids.indexOf(30);
      const sum = num(ids.subarray(22, stop).map((d) => d - 20));
      expect(sum).toBe(a + b);
      expect(a >= 1_000_000_000n && b >= 1_000_000_000n).toBe(true);
    }
  });

  it('forward addition: 6 wanted (7 fixed); multiplication: 10 or 11 (11 or 12 fixed)', () => {
    const fa = createDownstreamTask('forwardaddition_5');
    const faFixed = createDownstreamTask('forwardaddition_5', { fixQuirks: true });
    for (const ids of sweep(fa, 300)) {
      expect(positions(fa.wanted(ids))).toHaveLength(6);
      expect(positions(faFixed.wanted(ids))).toHaveLength(7);
    }
    const mul = createDownstreamTask('multiplication_5');
    const mulFixed = createDownstreamTask('multiplication_5', { fixQuirks: true });
    const counts = new Set<number>();
    for (const ids of sweep(mul, 300)) {
      const n = positions(mul.wanted(ids)).length;
      counts.add(n);
      const digits = ids.indexOf(30) - 12;
      expect(n).toBe(digits + 1);
      expect(positions(mulFixed.wanted(ids))).toHaveLength(n + 1);
      const a = Number(Array.from(ids.subarray(0, 5)).join(''));
      const b = Number(Array.from(ids.subarray(6, 11)).join(''));
      expect(Number(Array.from(ids.subarray(12, 12 + digits), (d) => d - 20).join(''))).toBe(a * b);
    }
    expect([...counts].sort()).toEqual([10, 11]);
  });

  it('sort [inferred]: x | sorted(x), wanted N..2N-1', () => {
    const task = createDownstreamTask('sort_10');
    for (const ids of sweep(task, 200)) {
      expect(ids.length).toBe(21);
      expect(ids[10]).toBe(100);
      expect(Array.from(ids.subarray(11))).toEqual(Array.from(ids.subarray(0, 10)).sort((x, y) => x - y));
      expect(positions(task.wanted(ids))).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    }
  });

  it('large operands take the BigInt path (multiplication_9, additionstream_20)', () => {
    for (const id of ['multiplication_9', 'additionstream_20']) {
      const task = createDownstreamTask(id);
      for (const ids of sweep(task, 50)) {
        const stop = ids.indexOf(30);
        const op = ids.indexOf(10);
        const eq = ids.indexOf(11);
        const rev = id.startsWith('addition');
        const num = (ds: Int32Array) => BigInt((rev ? [...ds].reverse() : [...ds]).join(''));
        const a = num(ids.subarray(0, op));
        const b = num(ids.subarray(op + 1, eq));
        const r = num(ids.subarray(eq + 1, stop).map((d) => d - 20));
        expect(r).toBe(rev ? a + b : a * b);
        expect(String(a)).toHaveLength(task.n);
      }
    }
  });
});

describe('registry', () => {
  it('sizes and defaults of the paper tasks (§6)', () => {
    const rows = PAPER_TASK_IDS.map((id) => {
      const t = createDownstreamTask(id);
      return [t.id, t.family, t.n, t.vocabSize, t.seqLen, t.padId, t.defaults];
    });
    const d = (nLayer: number, nHead: number, nEmbd: number, nPositions: number, batch: number, evalSteps: number, maxSteps: number) => ({
      nLayer, nHead, nEmbd, nPositions, batch, evalSteps, maxSteps,
    });
    expect(rows).toEqual([
      ['condattendstream_30', 'condattendstream', 30, 256, 63, 0, d(2, 4, 16, 100, 1000, 50, 10000)],
      ['additionstream_10', 'additionstream', 10, 31, 34, 12, d(2, 4, 16, 40, 1000, 50, 10000)],
      ['forwardaddition_5', 'forwardaddition', 5, 31, 19, 12, d(2, 4, 16, 40, 1000, 40, 10000)],
      ['multiplication_5', 'multiplication', 5, 31, 29, 12, d(4, 8, 512, 40, 64, 40, 156250)],
      ['sort_10', 'sort', 10, 102, 21, 101, d(2, 4, 16, 40, 1000, 50, 10000)],
    ]);
  });

  it('ids: name_N only; bad ids throw naming the id and the families', () => {
    expect(isDownstreamTaskId('condattendstream_30')).toBe(true);
    expect(isDownstreamTaskId('sort_10')).toBe(true);
    for (const bad of ['sort', 'condattendstream', 'needle_30', 'additionstream_10_12', 'forwardaddition_x', '']) {
      expect(isDownstreamTaskId(bad), bad).toBe(false);
      expect(() => createDownstreamTask(bad)).toThrow(/expected name_N with name one of condattendstream, additionstream, forwardaddition, multiplication, sort/);
    }
    expect(() => createDownstreamTask('condattendstream_65')).toThrow(/condattendstream_65.*1\.\.64/);
    expect(() => createDownstreamTask('multiplication_0')).toThrow(/multiplication_0/);
  });

  it('wanted() rejects rows of the wrong length', () => {
    expect(() => createDownstreamTask('forwardaddition_5').wanted(new Int32Array(18))).toThrow(/length 18, expected 19/);
  });
});
