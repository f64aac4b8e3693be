// Fisher's exact test and the median against values computed independently with exact integer
// binomials (Python's math.comb: the hypergeometric probabilities of every table with the observed
// margins, summed over those no more probable than the observed one).
import { describe, expect, it } from 'vitest';
import { fisherExactTwoSided, median } from '../../src/experiments/stats.ts';

describe('fisherExactTwoSided', () => {
  // [k1, n1, k2, n2, p] from math.comb.
  const CASES: [number, number, number, number, number][] = [
    [7, 8, 0, 8, 0.0013986013986013986],
    [3, 5, 0, 5, 0.16666666666666666],
    [10, 11, 0, 12, 9.614829913658827e-6],
    [1, 3, 1, 3, 1],
    [0, 4, 0, 4, 1],
    [2, 9, 5, 6, 0.040559440559440565],
    [40, 100, 25, 100, 0.034143802314768816],
    [3, 4, 0, 3, 0.14285714285714285],
  ];
  for (const [k1, n1, k2, n2, p] of CASES)
    it(`${k1}/${n1} against ${k2}/${n2}: p = ${p}`, () => {
      expect(fisherExactTwoSided(k1, n1, k2, n2)).toBeCloseTo(p, 12);
      // Symmetric in the two arms.
      expect(fisherExactTwoSided(k2, n2, k1, n1)).toBeCloseTo(p, 12);
    });

  it('refuses what is not a count', () => {
    expect(() => fisherExactTwoSided(3, 2, 0, 2)).toThrow(/3 of 2 is not a count/);
    expect(() => fisherExactTwoSided(1.5, 2, 0, 2)).toThrow(/not a count/);
  });
});

describe('median', () => {
  it('the middle value, or the mean of the middle two', () => {
    expect(median([1300])).toBe(1300);
    expect(median([900, 800, 1700])).toBe(900);
    expect(median([800, 1700, 900, 1000])).toBe(950);
    expect(() => median([])).toThrow(/empty/);
  });
});
