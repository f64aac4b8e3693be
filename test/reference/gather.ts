/**
 * float64 reference of the gather kernels (test/engine/gather.test.ts checks the forward and backward
 * kernels against it; see docs/kernels.md for the family's kernel, op, tests and benchmark).
 */

/** out[i] = x[idx[i]] over rows of width d (a zero row for an index outside [0, N)). */
export function gatherRef(x: Float32Array, idx: Int32Array, N: number, d: number): Float64Array {
  const out = new Float64Array(idx.length * d);
  idx.forEach((r, i) => {
    if (r >= 0 && r < N) for (let c = 0; c < d; c++) out[i * d + c] = x[r * d + c]!;
  });
  return out;
}

/** dx[idx[i]] += g[i] over rows of width d, into zeros or a copy of init (indices outside [0, N) skipped). */
export function scatterRef(g: Float32Array, idx: Int32Array, N: number, d: number, init?: Float32Array): Float64Array {
  const dx = init ? Float64Array.from(init) : new Float64Array(N * d);
  idx.forEach((r, i) => {
    if (r >= 0 && r < N) for (let c = 0; c < d; c++) dx[r * d + c]! += g[i * d + c]!;
  });
  return dx;
}
