/**
 * Small exact statistics for experiment reports.
 *
 * Fisher's exact test on a 2×2 table (the seeds of two arms that did / did not jump): with the
 * margins fixed, the count a in the top-left cell is hypergeometric,
 *   P(a) = C(r1, a)·C(r2, c1 − a) / C(n, c1)   (r1, r2 row sums, c1 the first column's, n the total),
 * and the two-sided p-value sums P over every a as probable as the observed one or less (R's
 * `fisher.test` and SciPy's `fisher_exact` convention, with the same relative tolerance 1e-7 for
 * ties). Computed in logs, so hundreds of seeds stay exact to double rounding.
 */

/** ln(n!) by summing logs (n is a count of seeds: small). */
function logFactorial(n: number): number {
  let s = 0;
  for (let i = 2; i <= n; i++) s += Math.log(i);
  return s;
}

function logChoose(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

/**
 * Two-sided p of Fisher's exact test for k1 successes of n1 against k2 of n2 (e.g. seeds past 50%
 * in an arm and in the baseline). Throws on counts that are not 0 ≤ k ≤ n integers.
 */
export function fisherExactTwoSided(k1: number, n1: number, k2: number, n2: number): number {
  for (const [k, n] of [
    [k1, n1],
    [k2, n2],
  ] as const)
    if (!Number.isInteger(k) || !Number.isInteger(n) || k < 0 || n < 0 || k > n) throw new Error(`fisherExactTwoSided: ${k} of ${n} is not a count`);
  const c1 = k1 + k2;
  const n = n1 + n2;
  const lo = Math.max(0, c1 - n2);
  const hi = Math.min(c1, n1);
  const logP = (a: number) => logChoose(n1, a) + logChoose(n2, c1 - a) - logChoose(n, c1);
  const observed = logP(k1);
  let p = 0;
  for (let a = lo; a <= hi; a++) {
    const lp = logP(a);
    if (lp <= observed + Math.log1p(1e-7)) p += Math.exp(lp);
  }
  return Math.min(1, p);
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (!xs.length) throw new Error('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
