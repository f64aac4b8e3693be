// Pointwise, normalisation, embedding, loss, dropout, reduction, row-gather and elementwise kernels: time and GB/s per kernel
// (each dispatch of an op replayed alone many times in one submit; bytes = the dispatch's declared
// traffic, every input read and every output written once), and wall time per op (record + submit +
// wait, median) for the fused/unfused pairs. Wall times through mitata (benchmarks/timing.ts).
//
//   node --import tsx benchmarks/pointwise.bench.ts [small|gpt2 ...]
//
// Shapes: 'small' = the small GPT of the paper's runs (B·T = 2048 rows, d = 128, 4d = 512, V = 512);
// 'gpt2' = GPT-2-small widths (d = 768, 4d = 3072, V = 50257) at as many rows as fit the binding
// limit and this machine (1024 rows; 512 for the 50257-wide logits; the token table is cut to what one
// binding holds where 50257 × 768 floats do not fit, e.g. 43690 rows under lavapipe's 128 MiB).
//
// `runPointwiseBench()` is exported for the project's benchmark runner.

import { pathToFileURL } from 'node:url';
import { backward } from '../engine/autograd.ts';
import { Engine, storageOf } from '../engine/engine.ts';
import { addBias, biasGelu, biasGeluUnfused, gelu } from '../engine/ops/activation.ts';
import { argmax, crossEntropy } from '../engine/ops/cross_entropy.ts';
import { dropout } from '../engine/ops/dropout.ts';
import { accumulate, add, mul } from '../engine/ops/elementwise.ts';
import { embedding } from '../engine/ops/embedding.ts';
import { gatherRows } from '../engine/ops/gather.ts';
import { addLayerNorm, addLayerNormUnfused, layerNorm } from '../engine/ops/layernorm.ts';
import { sum, sumOfSquares } from '../engine/ops/reduce.ts';
import type { Tensor } from '../engine/tensor.ts';
import { wallTime } from './timing.ts';

export type PointwiseShape = 'small' | 'gpt2';

export interface PointwiseKernelResult {
  shape: PointwiseShape;
  case: string;
  kernel: string;
  /** Median time per dispatch (replayed alone, many per submit). */
  ms: number;
  gbPerSecond: number;
}

export interface PointwiseCaseResult {
  shape: PointwiseShape;
  case: string;
  /** Median wall time of one iteration (record, submit, wait). */
  wallMs: number;
}

interface Dims {
  rows: number;
  d: number;
  ff: number;
  V: number;
  ceRows: number;
  B: number;
  T: number;
}

const DIMS: Record<PointwiseShape, Dims> = {
  small: { rows: 2048, d: 128, ff: 512, V: 512, ceRows: 2048, B: 16, T: 128 },
  gpt2: { rows: 1024, d: 768, ff: 3072, V: 50257, ceRows: 512, B: 1, T: 1024 },
};

function fill(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s >>> 8) / 16777216 - 0.5) * 2 * scale;
  }
  return a;
}

export async function runPointwiseBench(
  opts: { shapes?: PointwiseShape[]; print?: boolean; engine?: Engine; iters?: number } = {},
): Promise<{ kernels: PointwiseKernelResult[]; cases: PointwiseCaseResult[] }> {
  const print = opts.print ?? true;
  const e = opts.engine ?? (await Engine.create());
  const iters = opts.iters ?? 7;
  const kernels: PointwiseKernelResult[] = [];
  const cases: PointwiseCaseResult[] = [];
  if (print) console.log(`pointwise kernels on ${e.device.describe()}`);

  for (const shape of opts.shapes ?? (['small', 'gpt2'] as PointwiseShape[])) {
    const { rows, d, ff, V, ceRows, B, T } = DIMS[shape];
    const keep: Tensor[] = [];
    const t = (data: Float32Array | Int32Array, s: number[], requiresGrad = false) => {
      const x = e.tensor(data, s, { requiresGrad });
      keep.push(x);
      return x;
    };
    const x = t(fill(rows * d, 1), [rows, d], true);
    const r = t(fill(rows * d, 2), [rows, d], true);
    const gamma = t(fill(d, 3, 0.1).map((v) => 1 + v), [d], true);
    const beta = t(fill(d, 4, 0.1), [d], true);
    const h4 = t(fill(rows * ff, 5), [rows, ff], true);
    const b4 = t(fill(ff, 6), [ff], true);
    const gD = t(fill(rows * d, 7), [rows, d]);
    const g4 = t(fill(rows * ff, 8), [rows, ff]);
    // The token table must fit one binding (lavapipe: 128 MiB, less than GPT-2's 50257 × 768 × 4 B).
    const Ve = Math.min(V, Math.floor(e.device.limits.maxStorageBufferBindingSize / (4 * d)));
    const idsHost = Int32Array.from(fill(B * T, 9), (v) => Math.floor((v * 0.5 + 0.5) * Ve) % Ve);
    const ids = t(idsHost, [B, T]);
    const wte = t(fill(Ve * d, 10, 0.02), [Ve, d], true);
    const wpe = t(fill(T * d, 11, 0.01), [T, d], true);
    const logits = t(fill(ceRows * V, 12, 3), [ceRows, V], true);
    const targets = t(Int32Array.from(fill(ceRows, 13), (v) => Math.floor((v * 0.5 + 0.5) * V) % V), [ceRows]);
    const mask = t(Float32Array.from(fill(ceRows, 14), (v) => (v > -0.6 ? 1 : 0)), [ceRows]);
    // A quarter of the rows, distinct (the backward's requirement), in scattered order: i·7919 mod rows
    // is a permutation of the rows (rows is a power of two, 7919 odd).
    const gatherHost = Int32Array.from({ length: rows / 4 }, (_, i) => (i * 7919) % rows);
    const gatherIdx = t(gatherHost, [rows / 4]);
    const gG = t(fill((rows / 4) * d, 18), [rows / 4, d]);
    const acc = t(new Float32Array(rows * ff), [rows, ff]);
    const big = e.createStorage('sumsq bench', 4 * 16_000_000);
    e.write(big, fill(16_000_000, 15));

    const withGrad = (f: () => Tensor, g?: Tensor) => () => {
      for (const k of keep) k.grad = null; // leaf gradients made inside the last tidy are gone
      e.startGrad();
      const y = f();
      backward(y, g);
    };
    const list: [string, () => void][] = [
      ['layerNorm fwd', () => void layerNorm(x, gamma, beta)],
      ['layerNorm fwd+bwd', withGrad(() => layerNorm(x, gamma, beta), gD)],
      ['addLayerNorm fused fwd+bwd', withGrad(() => addLayerNorm(x, r, gamma, beta).y, gD)],
      ['addLayerNorm unfused fwd+bwd', withGrad(() => addLayerNormUnfused(x, r, gamma, beta).y, gD)],
      ['gelu fwd+bwd', withGrad(() => gelu(h4), g4)],
      ['addBias fwd+bwd', withGrad(() => addBias(h4, b4), g4)],
      ['biasGelu fused fwd+bwd', withGrad(() => biasGelu(h4, b4), g4)],
      ['biasGelu unfused fwd+bwd', withGrad(() => biasGeluUnfused(h4, b4), g4)],
      ['embedding csr fwd+bwd', withGrad(() => embedding(ids, wte, wpe, { idsHost }), t(fill(B * T * d, 16), [B, T, d]))],
      ['crossEntropy fwd+bwd', withGrad(() => crossEntropy(logits, targets, mask))],
      ['crossEntropy fwd (no grad)', () => void crossEntropy(logits, targets, mask)],
      ['argmax', () => void argmax(logits)],
      ['dropout p=0.1 fwd+bwd', withGrad(() => dropout(h4, 0.1, { seed: 1, step: 2 }), g4)],
      ['sum over rows', () => void sum(h4, 0)],
      ['sum over columns', () => void sum(h4, 1)],
      ['sumOfSquares 16M', () => void sumOfSquares([big], e)],
      ['gatherRows fwd+bwd (rows/4)', withGrad(() => gatherRows(x, gatherIdx, { idxHost: gatherHost }), gG)],
      ['add fwd+bwd', withGrad(() => add(x, r), gD)],
      ['mul fwd+bwd', withGrad(() => mul(x, r), gD)],
      ['accumulate in place', () => accumulate(acc, h4)],
    ];
    if (shape === 'small') list.splice(9, 0, ['embedding scan fwd+bwd', withGrad(() => embedding(ids, wte, wpe), t(fill(B * T * d, 17), [B, T, d]))]);

    for (const [name, f] of list) {
      const once = () => e.tidy(() => f());
      const samples = Math.max(3, Math.floor(iters / 2));
      // Median wall time of record + submit + wait, after one untimed call (compiles the pipelines).
      const { p50: wallMs } = await wallTime(
        async () => {
          once();
          await e.sync();
        },
        { warmup: 1, minSamples: samples, maxSamples: samples },
      );
      cases.push({ shape, case: name, wallMs });
      // Per kernel: capture the dispatches of one run, then replay each one alone, many times in one
      // submit. Nothing allocates in between, so the released pool buffers still hold the run's data.
      const captured: Parameters<Engine['dispatch']>[] = [];
      const orig = e.dispatch;
      e.dispatch = (...args: Parameters<Engine['dispatch']>) => {
        captured.push(args);
        orig.apply(e, args);
      };
      try {
        once();
      } finally {
        e.dispatch = orig;
      }
      await e.sync();
      const lines: string[] = [];
      for (const [spec, bound, uniforms, grid, cost] of captured) {
        const bindings = bound.map(storageOf); // the tensors are released; their buffers are intact
        // Timed: n replays of the dispatch in one submit, and the wait; ms per dispatch = median / n.
        // mitata's untimed warm-up call is the probe that sizes n: one dispatch, aiming at ~40 ms a submit.
        let n = 0;
        const { p50 } = await wallTime(
          async () => {
            if (n === 0) {
              const t0 = performance.now();
              e.dispatch(spec, bindings, uniforms, grid, cost);
              await e.sync();
              n = Math.max(3, Math.min(200, Math.ceil(40 / Math.max(performance.now() - t0, 1e-3))));
              return;
            }
            for (let i = 0; i < n; i++) e.dispatch(spec, bindings, uniforms, grid, cost);
            await e.sync();
          },
          { warmup: 1, minSamples: samples, maxSamples: samples },
        );
        const ms = p50 / n;
        const bytes = cost?.bytes ?? 0;
        const res: PointwiseKernelResult = { shape, case: name, kernel: spec.name, ms, gbPerSecond: ms > 0 ? bytes / (ms * 1e6) : 0 };
        kernels.push(res);
        lines.push(`      ${spec.name.padEnd(40)} ${ms.toFixed(3).padStart(9)} ms ${res.gbPerSecond.toFixed(2).padStart(7)} GB/s`);
      }
      if (print) {
        console.log(`  [${shape}] ${name.padEnd(32)} wall ${wallMs.toFixed(2).padStart(8)} ms`);
        for (const l of lines) console.log(l);
      }
    }
    for (const k of keep) k.dispose();
    big.buffer.destroy();
  }
  if (!opts.engine) e.destroy();
  return { kernels, cases };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2).filter((a): a is PointwiseShape => a === 'small' || a === 'gpt2');
  await runPointwiseBench({ shapes: args.length ? args : undefined });
}
