// Loss-token count statistics per sample (spec §10, L = 64, V = 100), over 4000 samples each, compared
// with the spec's table and with closed-form expectations where they exist.
import { describe, expect, it } from 'vitest';
import { createTask, lossCount, type TaskName } from '../../src/data/procedural/index.ts';

const N = 4000;

function stats(name: TaskName): { mean: number; min: number; max: number; values: Set<number> } {
  const task = createTask(name);
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  const values = new Set<number>();
  for (let i = 0; i < N; i++) {
    const c = lossCount(task.sample(i));
    sum += c;
    min = Math.min(min, c);
    max = Math.max(max, c);
    values.add(c);
  }
  return { mean: sum / N, min, max, values };
}

// Distinct values among n uniform draws from m symbols: E = m (1 - (1 - 1/m)^n).
const expectedDistinct = 99 * (1 - (98 / 99) ** 64); // ≈ 47.30

describe('§10 loss-token counts (L = 64, V = 100)', () => {
  it('sort / reverse / identity: always 64', () => {
    for (const name of ['sort', 'reverse', 'identity'] as const) {
      const s = stats(name);
      expect([s.min, s.max]).toEqual([64, 64]);
    }
  });

  it('set and union: 38–56, mean ≈ 47.2', () => {
    for (const name of ['set', 'union'] as const) {
      const s = stats(name);
      expect(s.mean).toBeCloseTo(47.2, 0);
      expect(Math.abs(s.mean - expectedDistinct)).toBeLessThan(0.15); // ≈ 3.5 standard errors
      expect(s.min).toBeGreaterThanOrEqual(38);
      expect(s.max).toBeLessThanOrEqual(56);
    }
  });

  it('delete: 63 or 64, mean ≈ 63.5 (r absent from x with probability (98/99)^64 ≈ 0.52)', () => {
    const s = stats('delete');
    expect([...s.values].sort()).toEqual([63, 64]);
    expect(s.mean).toBeCloseTo(63.5, 1);
    expect(Math.abs(s.mean - (63 + (98 / 99) ** 64))).toBeLessThan(0.03);
  });

  it('stack: 2–32, mean ≈ 11.0', () => {
    const s = stats('stack');
    expect(s.min).toBeGreaterThanOrEqual(2);
    expect(s.max).toBeLessThanOrEqual(32);
    expect(Math.abs(s.mean - 11.0)).toBeLessThan(0.2);
  });
});
