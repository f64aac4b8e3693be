/**
 * float64 reference of a composite graph (LayerNorm → bias + GELU → weighted sum) that
 * test/engine/autograd.test.ts differentiates through the engine's autograd; its analytic gradients are
 * checked there by central differences.
 */
import { gelu64, geluGrad64 } from './activation.ts';

/** Mean and reciprocal standard deviation (LayerNorm, eps 1e-5) of row r of x [R, d]. */
function rowStats(x: ArrayLike<number>, r: number, d: number): { m: number; rs: number } {
  let m = 0;
  for (let c = 0; c < d; c++) m += x[r * d + c]!;
  m /= d;
  let v = 0;
  for (let c = 0; c < d; c++) v += (x[r * d + c]! - m) ** 2;
  return { m, rs: 1 / Math.sqrt(v / d + 1e-5) };
}

/** float64 forward of the composite: loss = Σ_r w_r · Σ_c biasGelu(LN(x)·γ + β, b)[r, c]. */
export function compositeLoss(x: ArrayLike<number>, g: ArrayLike<number>, be: ArrayLike<number>, b: ArrayLike<number>, w: ArrayLike<number>, R: number, d: number): number {
  let loss = 0;
  for (let r = 0; r < R; r++) {
    const { m, rs } = rowStats(x, r, d);
    for (let c = 0; c < d; c++) loss += w[r]! * gelu64((x[r * d + c]! - m) * rs * g[c]! + be[c]! + b[c]!);
  }
  return loss;
}

/** float64 analytic gradients of compositeLoss. */
export function compositeGrad(x: ArrayLike<number>, g: ArrayLike<number>, be: ArrayLike<number>, b: ArrayLike<number>, w: ArrayLike<number>, R: number, d: number) {
  const dx = new Float64Array(R * d);
  const dg = new Float64Array(d);
  const dbe = new Float64Array(d);
  const db = new Float64Array(d);
  for (let r = 0; r < R; r++) {
    const { m, rs } = rowStats(x, r, d);
    const gy = new Float64Array(d);
    let a = 0;
    let bb = 0;
    for (let c = 0; c < d; c++) {
      const xh = (x[r * d + c]! - m) * rs;
      const d1 = w[r]! * geluGrad64(xh * g[c]! + be[c]! + b[c]!);
      db[c]! += d1;
      dbe[c]! += d1;
      dg[c]! += d1 * xh;
      gy[c] = d1;
      a += d1 * g[c]!;
      bb += d1 * g[c]! * xh;
    }
    a /= d;
    bb /= d;
    for (let c = 0; c < d; c++) {
      const xh = (x[r * d + c]! - m) * rs;
      dx[r * d + c] = rs * (gy[c]! * g[c]! - a - xh * bb);
    }
  }
  return { dx, dg, dbe, db };
}
