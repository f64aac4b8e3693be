/**
 * matmul / linear autograd ops (engine/ops/linear.ts) over the matmul kernel variants, against
 * float64 references on odd shapes with poisoned outputs; backward against the analytic float64
 * gradient, itself checked by central finite differences.
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../../engine/autograd.ts';
import { encodeMatmul } from '../../engine/ops/matmul.ts';
import { linear, matmul } from '../../engine/ops/linear.ts';
import { POISON, poison, randArray, relErr, useEngine } from '../helpers/gpu.ts';

const engine = useEngine();

/** float64 op(A)·op(B) (+ bias) (+ C0). A stored [M,K] or [K,M]; B stored [K,N] or [N,K]. */
function ref(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, tA: boolean, tB: boolean, bias?: ArrayLike<number>, c0?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = bias ? bias[j]! : 0;
      for (let k = 0; k < K; k++) s += (tA ? a[k * M + i]! : a[i * K + k]!) * (tB ? b[j * K + k]! : b[k * N + j]!);
      out[i * N + j] = s + (c0 ? c0[i * N + j]! : 0);
    }
  return out;
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 33, 3],
  [33, 17, 127],
  [5, 3, 257],
  [130, 64, 36],
  [64, 128, 96],
];
// Every specialisation (transposes, vec4 loads, exact tiles, bias, accumulate) is its own pipeline and
// compiling one costs up to a second on lavapipe: the big-tile variants get a smaller shape set.
const VARIANTS: [string, [number, number, number][]][] = [
  ['naive', SHAPES],
  ['reg4x4', SHAPES],
  ['reg4x8', [SHAPES[1]!, SHAPES[3]!, SHAPES[6]!]],
  ['shared', [SHAPES[1]!, SHAPES[5]!]],
];

describe('matmul kernels through encodeMatmul', () => {
  for (const [variant, shapes] of VARIANTS)
    it(`${variant}: every transpose form, bias and accumulate on odd shapes`, async () => {
      const e = await engine();
      let seed = 1;
      for (const [M, N, K] of shapes)
        for (const tA of [false, true])
          for (const tB of [false, true])
            for (const mode of ['plain', 'bias', 'acc'] as const) {
              const a = randArray(M * K, seed++);
              const b = randArray(K * N, seed++);
              const bias = mode === 'bias' ? randArray(N, seed++) : undefined;
              const c0 = mode === 'acc' ? randArray(M * N, seed++) : undefined;
              const ta = e.tensor(a);
              const tb = e.tensor(b);
              const tbias = bias ? e.tensor(bias) : null;
              const tc = e.empty([M * N]);
              if (c0) e.write(tc, c0);
              else poison(e, tc);
              encodeMatmul(e, ta, tb, tc, { M, N, K, transA: tA, transB: tB, accumulate: mode === 'acc', variant }, tbias);
              const got = await tc.read();
              const want = ref(a, b, M, N, K, tA, tB, bias, c0);
              expect(got.includes(POISON), `${variant} ${M}x${N}x${K} ${tA}${tB} ${mode}: unwritten`).toBe(false);
              expect(relErr(got, want), `${variant} ${M}x${N}x${K} tA=${tA} tB=${tB} ${mode}`).toBeLessThan(1e-4);
              for (const t of [ta, tb, tc, tbias]) t?.dispose();
            }
    });

  it('is deterministic (bitwise equal on two runs)', async () => {
    const e = await engine();
    const [M, N, K] = [67, 45, 129];
    const a = e.tensor(randArray(M * K, 91), [M, K]);
    const b = e.tensor(randArray(K * N, 92), [K, N]);
    const run = async () => Buffer.from((await matmul(a, b).read()).buffer);
    expect((await run()).equals(await run())).toBe(true);
  });
});

/** float64 gradients of L = Σ W_out ⊙ (x·W + b) for linear, by formula. */
function linearGrads(x: Float64Array, w: Float64Array, g: Float64Array, R: number, I: number, O: number) {
  const dx = new Float64Array(R * I);
  const dw = new Float64Array(I * O);
  const db = new Float64Array(O);
  for (let r = 0; r < R; r++)
    for (let o = 0; o < O; o++) {
      const gv = g[r * O + o]!;
      db[o]! += gv;
      for (let i = 0; i < I; i++) {
        dx[r * I + i]! += gv * w[i * O + o]!;
        dw[i * O + o]! += gv * x[r * I + i]!;
      }
    }
  return { dx, dw, db };
}

describe('linear and matmul backward', () => {
  it('the float64 reference gradient matches central finite differences', () => {
    const [R, I, O] = [3, 4, 5];
    const x = Float64Array.from(randArray(R * I, 5));
    const w = Float64Array.from(randArray(I * O, 6));
    const b = Float64Array.from(randArray(O, 7));
    const g = Float64Array.from(randArray(R * O, 8));
    const loss = (xx: Float64Array, ww: Float64Array, bb: Float64Array) => {
      const y = ref(xx, ww, R, O, I, false, false, bb);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += y[i]! * g[i]!;
      return s;
    };
    const { dx, dw, db } = linearGrads(x, w, g, R, I, O);
    const h = 1e-6;
    for (const [arr, grad] of [
      [x, dx],
      [w, dw],
      [b, db],
    ] as const)
      for (let i = 0; i < arr.length; i++) {
        const keep = arr[i]!;
        arr[i] = keep + h;
        const up = loss(x, w, b);
        arr[i] = keep - h;
        const down = loss(x, w, b);
        arr[i] = keep;
        expect(Math.abs((up - down) / (2 * h) - grad[i]!)).toBeLessThan(1e-7);
      }
  });

  for (const [R, I, O] of [
    [1, 3, 5],
    [17, 33, 9],
    [130, 64, 192],
  ] as const)
    it(`linear [${R},${I}]·[${I},${O}]: dx, dW, db against float64 (leaf grads and arena-style grads)`, async () => {
      const e = await engine();
      const x = randArray(R * I, R + 1);
      const w = randArray(I * O, I + 2);
      const b = randArray(O, O + 3);
      const g = randArray(R * O, 77);
      const want = linearGrads(Float64Array.from(x), Float64Array.from(w), Float64Array.from(g), R, I, O);
      // Leaves without a gradient buffer: backward hands them fresh tensors.
      const tx = e.tensor(x, [R, I], { requiresGrad: true });
      const tw = e.tensor(w, [I, O], { requiresGrad: true });
      const tb = e.tensor(b, [O], { requiresGrad: true });
      e.startGrad();
      const y = linear(tx, tw, tb);
      expect(relErr(await y.read(), ref(x, w, R, O, I, false, false, b))).toBeLessThan(1e-4);
      backward(y, e.tensor(g, [R, O]));
      expect(relErr(await tx.grad!.read(), want.dx)).toBeLessThan(1e-4);
      expect(relErr(await tw.grad!.read(), want.dw)).toBeLessThan(1e-4);
      expect(relErr(await tb.grad!.read(), want.db)).toBeLessThan(1e-5);
    });

  it('matmul backward for every transpose form', async () => {
    const e = await engine();
    const [M, N, K] = [13, 7, 21];
    for (const tA of [false, true])
      for (const tB of [false, true]) {
        const a = randArray(M * K, 31);
        const b = randArray(K * N, 32);
        const g = randArray(M * N, 33);
        const ta = e.tensor(a, tA ? [K, M] : [M, K], { requiresGrad: true });
        const tb = e.tensor(b, tB ? [N, K] : [K, N], { requiresGrad: true });
        e.startGrad();
        const c = matmul(ta, tb, { transA: tA, transB: tB });
        backward(c, e.tensor(g, [M, N]));
        // Reference by perturbation-free formula: dA_op = G·op(B)ᵀ, dB_op = op(A)ᵀ·G, then transpose back if stored transposed.
        const opA = (i: number, k: number) => (tA ? a[k * M + i]! : a[i * K + k]!);
        const opB = (k: number, j: number) => (tB ? b[j * K + k]! : b[k * N + j]!);
        const dA = new Float64Array(M * K);
        const dB = new Float64Array(K * N);
        for (let i = 0; i < M; i++)
          for (let k = 0; k < K; k++) {
            let s = 0;
            for (let j = 0; j < N; j++) s += g[i * N + j]! * opB(k, j);
            dA[tA ? k * M + i : i * K + k] = s;
          }
        for (let k = 0; k < K; k++)
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let i = 0; i < M; i++) s += opA(i, k) * g[i * N + j]!;
            dB[tB ? j * K + k : k * N + j] = s;
          }
        expect(relErr(await ta.grad!.read(), dA), `dA tA=${tA} tB=${tB}`).toBeLessThan(1e-4);
        expect(relErr(await tb.grad!.read(), dB), `dB tA=${tA} tB=${tB}`).toBeLessThan(1e-4);
      }
  });
});
