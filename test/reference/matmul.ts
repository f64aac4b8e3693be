/**
 * float64 reference of the matmul kernels (test/engine/matmul.test.ts checks every variant × form
 * against it, test/engine/plan.test.ts every variant a kernel plan can choose; see docs/kernels.md).
 */

/** float64 op(A)·op(B) for one batch entry; A stored [M,K] or [K,M], B stored [K,N] or [N,K]. */
export function refMatmul(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, tA: boolean, tB: boolean, aOff = 0, bOff = 0): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[aOff + (tA ? k * M + i : i * K + k)]! * b[bOff + (tB ? j * K + k : k * N + j)]!;
      out[i * N + j] = s;
    }
  return out;
}
