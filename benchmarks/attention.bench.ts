// Fused causal attention speed: forward and backward (dq + dkv) per shape and variant.
//
//   node --import tsx benchmarks/attention.bench.ts            # default shapes, auto variant
//   node --import tsx benchmarks/attention.bench.ts --all      # every variant this adapter has (--check: differences from the first)
//   node --import tsx benchmarks/attention.bench.ts --big      # also B=4, T=1024, d=768, H=12
//   node --import tsx benchmarks/attention.bench.ts --sweep    # GPT-2 shape: block tiles against tiled and sg (+ max difference from the first)
//   node --import tsx benchmarks/attention.bench.ts --sweep-all  # and every tiled wg × kb and sg split
//
// `runAttentionBench()` is exported for the project's benchmark runner; it returns ms and GFLOP/s.
// FLOPs counted: forward 4·hd per visible (query, key) pair (q·k and p·v), backward 8·hd per pair
// (dv, dp, dq, dk: the usual 2× forward, not counting our recomputation of s and dp).

import { pathToFileURL } from 'node:url';
import { Engine } from '../engine/engine.ts';
import { attentionBackward, attentionForward, availableAttentionVariants, type AttentionOptions, type AttentionVariant } from '../engine/ops/attention.ts';
import { wallTime } from './timing.ts';

export interface AttentionBenchResult {
  name: string;
  variant: string;
  B: number;
  T: number;
  d: number;
  H: number;
  fwdMs: number;
  bwdMs: number;
  fwdGflops: number;
  bwdGflops: number;
}

interface Shape {
  name: string;
  B: number;
  T: number;
  d: number;
  H: number;
}

export const ATTENTION_BENCH_SHAPES: Shape[] = [
  { name: 'small GPT', B: 16, T: 128, d: 128, H: 4 },
  { name: 'needle model', B: 1000, T: 63, d: 16, H: 4 },
];
export const ATTENTION_BENCH_BIG: Shape = { name: 'GPT-2 small, T=1024', B: 4, T: 1024, d: 768, H: 12 };

/** Mean wall time of `f` + sync over up to `maxIters` calls, stopping once they add up to `minMs`, after one warm-up call (compiles the pipelines). */
async function timeIt(e: Engine, f: () => void, minMs: number, maxIters: number): Promise<number> {
  const s = await wallTime(
    async () => {
      f();
      await e.sync();
    },
    { warmup: 1, minSamples: 1, maxSamples: maxIters, minMs },
  );
  return s.avg;
}

export async function runAttentionBench(
  opts: {
    print?: boolean;
    variants?: AttentionVariant[] | 'all';
    big?: boolean;
    shapes?: Shape[];
    minMs?: number;
    extra?: AttentionOptions;
    /** Explicit configurations (label and options) instead of `variants`. */
    configs?: { label: string; o: AttentionOptions }[];
    /** Also print each configuration's largest difference in y and dqkv from the first's (relative to its largest magnitude). */
    check?: boolean;
  } = {},
): Promise<AttentionBenchResult[]> {
  const print = opts.print ?? true;
  const e = await Engine.create();
  const shapes = [...(opts.shapes ?? ATTENTION_BENCH_SHAPES), ...(opts.big ? [ATTENTION_BENCH_BIG] : [])];
  const variants: AttentionVariant[] = opts.variants === 'all' ? availableAttentionVariants(e) : (opts.variants ?? ['auto']);
  const results: AttentionBenchResult[] = [];
  if (print) console.log(`attention on ${e.device.describe()}`);
  for (const s of shapes) {
    const hd = s.d / s.H;
    const qkvData = new Float32Array(s.B * s.T * 3 * s.d);
    for (let i = 0; i < qkvData.length; i++) qkvData[i] = Math.sin(i * 0.37) * 0.5;
    const qkv = e.tensor(qkvData, [s.B, s.T, 3 * s.d]);
    const dy = e.tensor(qkvData.subarray(0, s.B * s.T * s.d), [s.B, s.T, s.d]);
    const pairs = (s.B * s.H * s.T * (s.T + 1)) / 2;
    const configs = opts.configs ?? variants.map((variant) => ({ label: variant, o: { variant } as AttentionOptions }));
    let first: { y: Float32Array; g: Float32Array } | undefined;
    for (const { label: variant, o: co } of configs) {
      const o: AttentionOptions = { ...opts.extra, ...co };
      const minMs = opts.minMs ?? 1500;
      const maxIters = 50;
      let fwdMs: number;
      let bwdMs: number;
      let diff = '';
      try {
        const { y, lse } = attentionForward(qkv, s.H, o);
        if (opts.check) {
          const dqkv = e.tidy(() => attentionBackward(qkv, y, lse, dy, s.H, o));
          const out = { y: (await y.read()) as Float32Array, g: (await dqkv.read()) as Float32Array };
          dqkv.dispose();
          first ??= out;
          diff = `  Δy ${relMaxDiff(out.y, first.y).toExponential(1)} Δdqkv ${relMaxDiff(out.g, first.g).toExponential(1)}`;
        }
        fwdMs = await timeIt(e, () => e.tidy(() => void attentionForward(qkv, s.H, o)), minMs, maxIters);
        bwdMs = await timeIt(e, () => e.tidy(() => void attentionBackward(qkv, y, lse, dy, s.H, o)), minMs, maxIters);
        y.dispose();
        lse.dispose();
      } catch (err) {
        // A variant that does not run at this shape (block at hd 32, sg without subgroups) says why.
        if (print) console.log(`  ${s.name.padEnd(20)} ${variant}: failed: ${(err as Error).message.split('\n')[0]}`);
        continue;
      }
      const r: AttentionBenchResult = {
        name: s.name,
        variant,
        B: s.B,
        T: s.T,
        d: s.d,
        H: s.H,
        fwdMs,
        bwdMs,
        fwdGflops: (4 * hd * pairs) / (fwdMs * 1e6),
        bwdGflops: (8 * hd * pairs) / (bwdMs * 1e6),
      };
      results.push(r);
      if (print)
        console.log(
          `  ${s.name.padEnd(20)} B=${s.B} T=${s.T} d=${s.d} H=${s.H} (hd ${hd})  ${variant.padEnd(opts.configs ? 18 : 5)}  fwd ${fwdMs.toFixed(2).padStart(8)} ms ${r.fwdGflops
            .toFixed(2)
            .padStart(6)} GFLOP/s   bwd ${bwdMs.toFixed(2).padStart(8)} ms ${r.bwdGflops.toFixed(2).padStart(6)} GFLOP/s${diff}`,
        );
    }
    qkv.dispose();
    dy.dispose();
  }
  await e.sync();
  e.destroy();
  return results;
}

/** max |a − b| / max |b|. */
function relMaxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m > 0 ? d / m : d;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  if (args.includes('--sweep') || args.includes('--sweep-all')) {
    // The block kernels' tiles (fwd, dq, dkv: own rows × streamed rows) against the kernels measured
    // best before them (tiled wg64 kb4 forward, sg split 4 backward; `--sweep-all`: every tiled
    // workgroup size × key block and sg split), at the GPT-2 shape (head dim 64), to pick the
    // hardware defaults; each checked against the first (tiled wg64 kb4).
    const all = args.includes('--sweep-all');
    const configs: { label: string; o: AttentionOptions }[] = [];
    for (const wg of all ? [64, 32, 128] : [64]) for (const kb of all ? [4, 1, 2] : [4]) configs.push({ label: `tiled wg${wg} kb${kb}`, o: { variant: 'tiled', wg, kb } });
    // (One engine per process: a second Dawn device after destroying a first aborted on the H200. On
    // adapters without subgroups the sg rows print as failed.)
    for (const split of all ? [2, 4, 8, 16] : [4]) configs.push({ label: `sg split${split}`, o: { variant: 'sg', split } });
    const t = (rows: number, cols: number) => ({ rows, cols });
    configs.push({ label: 'block (plan tiles)', o: { variant: 'block' } });
    configs.push({ label: 'block 32x32 32x16 32x16', o: { variant: 'block', blockTiles: { fwd: t(32, 32), dq: t(32, 16), dkv: t(32, 16) } } });
    configs.push({ label: 'block 64x16 32x32 32x32', o: { variant: 'block', blockTiles: { fwd: t(64, 16), dq: t(32, 32), dkv: t(32, 32) } } });
    configs.push({ label: 'block 16x16', o: { variant: 'block', blockTiles: { fwd: t(16, 16), dq: t(16, 16), dkv: t(16, 16) } } });
    await runAttentionBench({ shapes: [ATTENTION_BENCH_BIG], configs, minMs: 300, check: true });
  } else await runAttentionBench({ variants: args.includes('--all') ? 'all' : ['auto'], big: args.includes('--big'), check: args.includes('--check') });
}
