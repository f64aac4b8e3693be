/**
 * float64 reference of the reduce kernels (test/engine/reduce.test.ts checks every variant against it;
 * see docs/kernels.md for the family's kernel, op, tests and benchmark).
 */

/** Σ over `axis` of x with `shape` (row-major), times scale. */
export function refSum(x: ArrayLike<number>, shape: number[], axis: number, scale = 1): Float64Array {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let k = 0; k < n; k++) for (let i = 0; i < inner; i++) out[o * inner + i]! += x[(o * n + k) * inner + i]!;
  return out.map((v) => v * scale);
}
