/**
 * float64 reference of the layernorm kernels (test/engine/layernorm.test.ts checks every variant against it;
 * see docs/kernels.md for the family's kernel, op, tests and benchmark).
 */

export const EPS = 1e-5;

/** float64 LayerNorm: y, mean, rstd. */
export function lnRef(x: ArrayLike<number>, rows: number, d: number, g: ArrayLike<number>, b: ArrayLike<number>, eps = EPS) {
  const y = new Float64Array(rows * d);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += x[r * d + c]!;
    const m = s / d;
    let q = 0;
    for (let c = 0; c < d; c++) q += (x[r * d + c]! - m) ** 2;
    const rs = 1 / Math.sqrt(q / d + eps);
    for (let c = 0; c < d; c++) y[r * d + c] = (x[r * d + c]! - m) * rs * g[c]! + b[c]!;
    mean[r] = m;
    rstd[r] = rs;
  }
  return { y, mean, rstd };
}

/** float64 analytic LayerNorm backward. */
export function lnBwdRef(x: ArrayLike<number>, rows: number, d: number, g: ArrayLike<number>, gy: ArrayLike<number>, eps = EPS) {
  const { mean, rstd } = lnRef(x, rows, d, g, new Float64Array(d), eps);
  const dx = new Float64Array(rows * d);
  const dg = new Float64Array(d);
  const db = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    let a = 0;
    let b = 0;
    for (let c = 0; c < d; c++) {
      const xh = (x[r * d + c]! - mean[r]!) * rstd[r]!;
      const gg = gy[r * d + c]! * g[c]!;
      a += gg;
      b += gg * xh;
      dg[c]! += gy[r * d + c]! * xh;
      db[c]! += gy[r * d + c]!;
    }
    a /= d;
    b /= d;
    for (let c = 0; c < d; c++) {
      const xh = (x[r * d + c]! - mean[r]!) * rstd[r]!;
      dx[r * d + c] = rstd[r]! * (gy[r * d + c]! * g[c]! - a - xh * b);
    }
  }
  return { dx, dg, db };
}
