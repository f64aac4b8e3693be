/**
 * The adapter's measured ceilings, for the roofline in docs/performance.md: arithmetic (an FMA loop
 * unrolled 1× and 8× over independent vec4 accumulators) and bandwidth (a vec4 copy; bytes read +
 * written). Best of 8 timed repetitions, through mitata (benchmarks/timing.ts); the machine's noise is
 * ±15%, the best is the ceiling.
 * On hardware adapters the problems are 16× larger and each timed repetition submits several
 * dispatches, so a measurement runs for milliseconds, far above the submit-and-wait overhead.
 *
 *   node --import tsx benchmarks/roofline.bench.ts
 */
import { pathToFileURL } from 'node:url';
import { copyVec4, fmaPeak, ROOFLINE_WG } from '../kernels/roofline.ts';
import { Engine } from '../engine/engine.ts';
import { grid1d } from '../engine/ops/common.ts';
import { wallTime } from './timing.ts';

export interface RooflineResult {
  fmaGflops: Record<string, number>;
  copyGBs: number;
}

/** Fastest of `reps` timed submissions (each waited for), after one untimed. */
async function best(engine: Engine, reps: number, fn: () => void): Promise<number> {
  const s = await wallTime(
    async () => {
      fn();
      await engine.sync();
    },
    { warmup: 1, minSamples: reps, maxSamples: reps },
  );
  return s.min;
}

export async function runRooflineBench(engine?: Engine): Promise<RooflineResult> {
  const e = engine ?? (await Engine.create());
  try {
    const fmaGflops: Record<string, number> = {};
    const hw = !e.device.info.software;
    const n = (hw ? 1024 : 64) * 1024; // invocations
    const reps = hw ? 10 : 1; // dispatches per timed submission
    const out = e.empty([n * 4]);
    for (const unroll of [1, 8]) {
      const iters = (unroll === 1 ? 4096 : 512) * (hw ? 4 : 1);
      const ms = await best(e, 8, () => {
        for (let r = 0; r < reps; r++) e.dispatch(fmaPeak({ unroll }), [out], { iters, n }, grid1d(n, ROOFLINE_WG));
      });
      const flops = reps * n * iters * unroll * 4 * 2;
      fmaGflops[`x${unroll}`] = flops / (ms * 1e6);
    }
    const elems = (hw ? 64 : 16) * 1024 * 1024; // 64 MiB each way (256 MiB on hardware)
    const a = e.zeros([elems]);
    const b = e.empty([elems]);
    const ms = await best(e, 8, () => {
      for (let r = 0; r < reps; r++) e.dispatch(copyVec4, [a, b], { n: elems / 4 }, grid1d(elems / 4, ROOFLINE_WG));
    });
    const copyGBs = (reps * 2 * 4 * elems) / (ms * 1e6);
    out.dispose();
    a.dispose();
    b.dispose();
    return { fmaGflops, copyGBs };
  } finally {
    if (!engine) e.destroy();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runRooflineBench();
  for (const [k, v] of Object.entries(r.fmaGflops)) console.log(`FMA loop, unrolled ${k}: ${v.toFixed(1)} GFLOP/s`);
  console.log(`vec4 copy (read + write): ${r.copyGBs.toFixed(2)} GB/s`);
}
