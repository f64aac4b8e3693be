// AdamW step speed over a ParameterStore: the full step (gradient norm + clip + AdamW), AdamW alone,
// and the gradient norm alone, for 0.1M, 1M and 10M parameters. Each timed iteration records the
// step, submits it and waits for the device (`engine.sync()`), so the numbers include one submit
// (timed with mitata: benchmarks/timing.ts).
//
//   node --import tsx benchmarks/optim.bench.ts
//
// `runOptimBench()` is exported for the project's benchmark runner.

import { pathToFileURL } from 'node:url';
import { Engine } from '../engine/engine.ts';
import { AdamW, defaultUnroll } from '../engine/optim.ts';
import { ParameterStore, type ParamDecl } from '../engine/params.ts';
import { wallTime } from './timing.ts';

export interface OptimBenchResult {
  case: 'adamw+clip' | 'adamw' | 'grad norm' | `adamw unroll ${number}`;
  params: number;
  chunks: number;
  /** Median wall time per step. */
  msPerStep: number;
  /** Fastest step seen. */
  bestMs: number;
  /** Device bytes moved per step (reads + writes, at least once each) per second, at the median. */
  gbPerSecond: number;
  /** The same at the fastest step. */
  bestGbPerSecond: number;
}

/** A model-like mix: a few large matrices, odd-sized ones and small biases, summing to ~n. */
function declsFor(n: number): ParamDecl[] {
  const out: ParamDecl[] = [];
  const big = Math.floor(n / 6);
  for (let i = 0; i < 4; i++) out.push({ name: `h.${i}.weight`, shape: [big] });
  out.push({ name: 'odd.weight', shape: [big + 13] });
  for (let i = 0; i < 8; i++) out.push({ name: `h.${i}.bias`, shape: [97], decay: false });
  const rest = n - out.reduce((a, d) => a + d.shape[0]!, 0);
  out.push({ name: 'rest', shape: [Math.max(1, rest)] });
  return out;
}

/** Median and fastest wall time of one recorded + submitted + awaited call (the fastest is the best estimate on a shared machine). */
async function timeIt(engine: Engine, f: () => void, minMs = 1500, minIters = 5): Promise<{ median: number; best: number }> {
  const s = await wallTime(
    async () => {
      f();
      await engine.sync();
    },
    { warmup: 3, minSamples: minIters, minMs },
  );
  return { median: s.p50, best: s.min };
}

export async function runOptimBench(
  opts: { sizes?: number[]; print?: boolean; engine?: Engine; minMs?: number; /** AdamW unroll factors to compare at the largest size. */ unrolls?: number[] } = {},
): Promise<OptimBenchResult[]> {
  const print = opts.print ?? true;
  const engine = opts.engine ?? (await Engine.create());
  const sizes = opts.sizes ?? [100_000, 1_000_000, 10_000_000];
  const results: OptimBenchResult[] = [];
  if (print) console.log(`AdamW on ${engine.device.describe()} (default unroll ${defaultUnroll(engine)})`);
  for (const n of sizes) {
    const store = ParameterStore.create(engine, declsFor(n));
    // Gradients: a fixed pattern (values do not change the speed).
    for (const [, t] of store.entries()) {
      const g = new Float32Array(t.numel);
      for (let i = 0; i < g.length; i++) g[i] = Math.sin(i * 0.37) * 1e-2;
      engine.write(t.grad!, g);
    }
    const N = store.numel;
    const clipped = new AdamW(store, { maxGradNorm: 1, weightDecay: 0.1 });
    const plain = new AdamW(store, { maxGradNorm: null, trackGradNorm: false, weightDecay: 0.1 });
    const flagBytes = N / 4; // 2 bits per element
    const cases: [OptimBenchResult['case'], () => void, number][] = [
      ['adamw+clip', () => clipped.step(1e-4), 32 * N + flagBytes],
      ['adamw', () => plain.step(1e-4), 28 * N + flagBytes],
      ['grad norm', () => void clipped.recordGradNorm(), 4 * N],
    ];
    const sweep: AdamW[] = [];
    if (n === sizes[sizes.length - 1])
      for (const unroll of opts.unrolls ?? [1, 2, 4, 8]) {
        const o = new AdamW(store, { maxGradNorm: null, trackGradNorm: false, weightDecay: 0.1, unroll });
        sweep.push(o);
        cases.push([`adamw unroll ${unroll}`, () => o.step(1e-4), 28 * N + flagBytes]);
      }
    for (const [name, f, bytes] of cases) {
      const { median, best } = await timeIt(engine, f, opts.minMs);
      const r: OptimBenchResult = {
        case: name,
        params: N,
        chunks: store.chunks,
        msPerStep: median,
        bestMs: best,
        gbPerSecond: bytes / (median * 1e6),
        bestGbPerSecond: bytes / (best * 1e6),
      };
      results.push(r);
      if (print)
        console.log(
          `  ${name.padEnd(15)} ${(N / 1e6).toFixed(1).padStart(5)}M params  median ${median.toFixed(2).padStart(8)} ms ${r.gbPerSecond.toFixed(2).padStart(6)} GB/s` +
            `   best ${best.toFixed(2).padStart(8)} ms ${r.bestGbPerSecond.toFixed(2).padStart(6)} GB/s`,
        );
    }
    for (const o of [clipped, plain, ...sweep]) o.destroy();
    store.destroy();
  }
  if (!opts.engine) engine.destroy();
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runOptimBench();
}
