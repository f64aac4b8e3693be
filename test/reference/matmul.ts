/**
 * float64 reference of the matmul kernels (test/engine/matmul.test.ts checks every variant × form
 * against it, test/engine/plan.test.ts every variant a kernel plan can choose; see docs/kernels.md), and the
 * analytic gradients of matmul and linear (HF Conv1D) that the backward tests check, and of the
 * MLP's two halves, gelu(x·W + b) and gelu(z)·W + b (test/engine/linear_gelu.test.ts, gelu_linear.test.ts).
 */
import { geluGrad64, gelu64 } from './activation.ts';

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

/** float64 op(X) as a dense [rows, cols] accessor. */
function opAt(x: ArrayLike<number>, rows: number, cols: number, t: boolean, off = 0) {
  return (i: number, j: number) => x[off + (t ? j * rows + i : i * cols + j)]!;
}

/**
 * Analytic float64 gradients of L = Σ G ⊙ (op(A)·op(B)) for (possibly batched / broadcast)
 * operands, in each operand's stored layout.
 */
export function refGrads(a: Float64Array, b: Float64Array, g: Float64Array, M: number, N: number, K: number, tA: boolean, tB: boolean, batch: number, aB: boolean, bB: boolean) {
  const dA = new Float64Array(a.length);
  const dB = new Float64Array(b.length);
  for (let z = 0; z < batch; z++) {
    const ao = aB ? z * M * K : 0;
    const bo = bB ? z * K * N : 0;
    const A = opAt(a, M, K, tA, ao);
    const Bm = opAt(b, K, N, tB, bo);
    for (let i = 0; i < M; i++)
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let j = 0; j < N; j++) s += g[z * M * N + i * N + j]! * Bm(k, j);
        dA[ao + (tA ? k * M + i : i * K + k)] += s;
      }
    for (let k = 0; k < K; k++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let i = 0; i < M; i++) s += A(i, k) * g[z * M * N + i * N + j]!;
        dB[bo + (tB ? j * K + k : k * N + j)] += s;
      }
  }
  return { dA, dB };
}

/** L = Σ G ⊙ (op(A)·op(B)) over the batch (the loss refGrads differentiates; the tests check it by central differences). */
export function lossOf(a: Float64Array, b: Float64Array, g: Float64Array, M: number, N: number, K: number, tA: boolean, tB: boolean, batch: number, aB: boolean, bB: boolean): number {
  let L = 0;
  for (let z = 0; z < batch; z++) {
    const c = refMatmul(a, b, M, N, K, tA, tB, aB ? z * M * K : 0, bB ? z * K * N : 0);
    for (let i = 0; i < M * N; i++) L += g[z * M * N + i]! * c[i]!;
  }
  return L;
}

/** float64 y = x·W + b and its gradients for upstream gradient G. */
export function refLinear(x: Float32Array, w: Float32Array, bias: Float32Array, g: Float32Array, R: number, I: number, O: number) {
  const y = new Float64Array(R * O);
  const dx = new Float64Array(R * I);
  const dw = new Float64Array(I * O);
  const db = new Float64Array(O);
  for (let r = 0; r < R; r++)
    for (let o = 0; o < O; o++) {
      let s = bias[o]!;
      for (let i = 0; i < I; i++) s += x[r * I + i]! * w[i * O + o]!;
      y[r * O + o] = s;
      db[o] += g[r * O + o]!;
      for (let i = 0; i < I; i++) {
        dx[r * I + i] += g[r * O + o]! * w[i * O + o]!;
        dw[i * O + o] += x[r * I + i]! * g[r * O + o]!;
      }
    }
  return { y, dx, dw, db };
}

/** float64 op(A_g)·op(B_g) for G stacked entries (A_g at g·M·K, B_g at g·K·N), concatenated as [G·M, N]. */
export function refMatmulStack(a: ArrayLike<number>, b: ArrayLike<number>, G: number, M: number, N: number, K: number, tA = false, tB = false): Float64Array {
  const out = new Float64Array(G * M * N);
  for (let g = 0; g < G; g++) out.set(refMatmul(a, b, M, N, K, tA, tB, g * M * K, g * K * N), g * M * N);
  return out;
}

/** Σ over each group's rows of a [G·R, C] array: [G, C] (a stacked bias gradient). */
function groupColsum(x: ArrayLike<number>, G: number, R: number, C: number): Float64Array {
  const out = new Float64Array(G * C);
  for (let i = 0; i < G * R * C; i++) out[Math.floor(i / (R * C)) * C + (i % C)]! += x[i]!;
  return out;
}

/** x + b_g[col] for a [G·R, C] array and biases [G, C]. */
function addGroupBias(x: Float64Array, b: ArrayLike<number>, R: number, C: number): Float64Array {
  return x.map((v, i) => v + b[Math.floor(i / (R * C)) * C + (i % C)]!);
}

/**
 * float64 y = x·W + b for G stacked layers (x [G·R, I], W [G, I, O], b [G, O]) and its gradients for
 * the upstream gradient gy (`refLinear` for a stack).
 */
export function refLinearStack(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, gy: ArrayLike<number>, G: number, R: number, I: number, O: number) {
  return {
    y: addGroupBias(refMatmulStack(x, w, G, R, O, I), b, R, O),
    dx: refMatmulStack(gy, w, G, R, I, O, false, true),
    dw: refMatmulStack(x, gy, G, I, O, R, true, false),
    db: groupColsum(gy, G, R, O),
  };
}

/**
 * float64 y = gelu(x·W + b) for G stacked layers and its gradients for the upstream gradient gy;
 * z is the pre-activation, dz = gy·gelu'(z), the rest `refLinearStack`'s for dz.
 */
export function refLinearGelu(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, gy: ArrayLike<number>, G: number, R: number, I: number, O: number) {
  const z = addGroupBias(refMatmulStack(x, w, G, R, O, I), b, R, O);
  const dz = z.map((v, i) => gy[i]! * geluGrad64(v));
  const { dx, dw, db } = refLinearStack(x, w, b, dz, G, R, I, O);
  return { z, y: z.map(gelu64), dz, dx, dw, db };
}

/**
 * float64 y = gelu(z)·W + b for G stacked layers (z [G·R, I], W [G, I, O], b [G, O]) and its
 * gradients for gy: dz = (gy·Wᵀ)·gelu'(z), dW = gelu(z)ᵀ·gy, db = Σ_rows gy. `q` gives the operands
 * as the products read them (rounded to a half precision: z, W and gy; db sums the rounded gy as the
 * product's staged tiles do), the derivative keeps the exact z.
 */
export function refGeluLinear(
  z: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  gy: ArrayLike<number>,
  G: number,
  R: number,
  I: number,
  O: number,
  q: { z: ArrayLike<number>; w: ArrayLike<number>; gy: ArrayLike<number> } = { z, w, gy },
) {
  const f = Float64Array.from(q.z, gelu64);
  const y = addGroupBias(refMatmulStack(f, q.w, G, R, O, I), b, R, O);
  const dz = refMatmulStack(q.gy, q.w, G, R, I, O, false, true).map((v, i) => v * geluGrad64(z[i]!));
  return { y, dz, dw: refMatmulStack(f, q.gy, G, I, O, R, true, false), db: groupColsum(q.gy, G, R, O) };
}
