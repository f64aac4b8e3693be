/**
 * Wall-clock timing for the benchmarks, through mitata's `measure` (the building block under its
 * `bench`/`run`), with a sampling budget each benchmark sets instead of mitata's default (at least 12
 * samples and 642 ms per benchmark, which on lavapipe would make `npm run bench` many times longer).
 *
 * The function under test must include its wait for the device (`await engine.sync()`, a readback,
 * `gpuWait(queue.onSubmittedWorkDone())`), so a sample is the wall time of recording, submitting and
 * completing the work. GPU timestamp timings (engine.profiler) do not go through here.
 *
 * Fixed policy, whatever the budget: `warmup` untimed calls first (at least 1: mitata always makes
 * one), never batched (each sample is one call), no trimming of outliers (min is the fastest call,
 * as the benchmarks' "best of N" means), no forced garbage collection (without --expose-gc mitata's
 * stand-in allocates 1 GiB).
 */
import { measure } from 'mitata';

export interface WallBudget {
  /** Untimed calls before the samples (default 1; mitata always makes at least one). */
  warmup?: number;
  /** Samples at least (default 1). */
  minSamples?: number;
  /** Samples at most (default: no limit; then `minMs` ends the run). */
  maxSamples?: number;
  /** Keep sampling until the samples add up to this many ms (default 0), within `maxSamples`. */
  minMs?: number;
}

/** In milliseconds. `samples` is each timed call's wall time, sorted ascending. */
export interface WallStats {
  avg: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  /** Sum of the samples. */
  total: number;
  samples: number[];
}

export async function wallTime(fn: () => unknown, budget: WallBudget = {}): Promise<WallStats> {
  const warmup = Math.max(1, budget.warmup ?? 1);
  const s = await measure(fn, {
    warmup_samples: warmup - 1,
    warmup_threshold: Infinity, // always make the warm-up calls, however slow the first one was
    batch_threshold: -1, // never batch: a call is one sample
    min_samples: budget.minSamples ?? 1,
    max_samples: budget.maxSamples ?? Infinity,
    min_cpu_time: (budget.minMs ?? 0) * 1e6, // mitata counts nanoseconds (the sum of the samples' wall times)
    samples_threshold: Infinity, // keep every sample
    gc: false,
  });
  const ms = (ns: number) => ns / 1e6;
  const samples = s.samples.map(ms);
  return { avg: ms(s.avg), min: ms(s.min), p50: ms(s.p50), p99: ms(s.p99), max: ms(s.max), total: samples.reduce((a, b) => a + b, 0), samples };
}
