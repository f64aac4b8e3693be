// Matmul speed per variant, against a peer: TensorFlow.js's WebGPU backend on the same Dawn adapter,
// in the same process. Square products (256³, 512³, 1024³) and the small-GPT shapes of a training
// step (batch 16 × context 128 = 2048 rows, d = 128): the forward products (q|k|v, MLP up and down,
// tied lm head) and the backward forms (dx = dY·Wᵀ, dW = xᵀ·dY); and the needle model's products with
// N = d = 16 over its packed body (`--cases=needle`), and the width-64 needle model's weight gradients
// (`--cases=w64`; `w32`: the same at d = 32).
//
//   node --import tsx benchmarks/matmul.bench.ts [--quick] [--no-peer] [--variants=sg32x4,reg4x4] [--cases=1024,qkv]
//
// A variant may carry a split-K factor for the shared kernels: --variants=shared128/s1,shared128/s3
// (s1: no split, whatever chooseSplitK would pick; the automatic row uses chooseSplitK).
//
// Each measurement runs the product and reads C back (ours: one dispatch + readback; TF.js:
// tf.matMul + data()), alternating ours and theirs, best of several rounds after a warm-up.
// `runMatmulBench(opts)` is exported for the benchmark runner; it returns the table rows.

import { pathToFileURL } from 'node:url';
import { Engine } from '../engine/engine.ts';
import { chooseMatmulVariant, encodeMatmul, hasSubgroupVariants } from '../engine/ops/matmul.ts';
import { loadTfjs, releaseTfjs } from './peers/tfjs_gpt.ts';
import { gpuWait } from '../engine/wait.ts';
import { runRooflineBench } from './roofline.bench.ts';
import { wallTime } from './timing.ts';

export interface MatmulCase {
  name: string;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
}

export interface MatmulBenchRow {
  case: string;
  /** op(A)·op(B) form, e.g. "nt". */
  form: string;
  M: number;
  N: number;
  K: number;
  /** Our variant ("auto:<name>" for the one chooseMatmulVariant picks). */
  variant: string;
  ms: number;
  gflops: number;
  /** TF.js WebGPU on the same shape, when the peer ran. */
  tfjsMs?: number;
  tfjsGflops?: number;
  /** ours / TF.js (GFLOP/s ratio). */
  ratio?: number;
}

export interface MatmulBenchOptions {
  /** Fewer cases and rounds. */
  quick?: boolean;
  /** Run the TF.js peer (default true). */
  peer?: boolean;
  /** Variants to time besides the automatic choice (default: the register and subgroup tiles); `name/sN` forces N splits of K. */
  variants?: string[];
  /** Only cases whose name contains one of these. */
  cases?: string[];
  /** Rounds per measurement (best is kept). */
  rounds?: number;
  engine?: Engine;
  log?: (line: string) => void;
}

const ROWS = 16 * 128; // batch 16 × context 128
const D = 128;
const NEEDLE_ROWS = 16384;
const W64_ROWS = 9216;

export const MATMUL_CASES: MatmulCase[] = [
  { name: '256³', M: 256, N: 256, K: 256 },
  { name: '512³', M: 512, N: 512, K: 512 },
  { name: '1024³', M: 1024, N: 1024, K: 1024 },
  { name: 'qkv x·Wqkv', M: ROWS, N: 3 * D, K: D },
  { name: 'mlp up x·Wfc', M: ROWS, N: 4 * D, K: D },
  { name: 'mlp down h·Wproj', M: ROWS, N: D, K: 4 * D },
  { name: 'lm head x·wteᵀ', M: ROWS, N: 512, K: D, transB: true },
  { name: 'dx = dY·Wfcᵀ', M: ROWS, N: D, K: 4 * D, transB: true },
  { name: 'dW = xᵀ·dY', M: D, N: 3 * D, K: ROWS, transA: true },
  { name: 'dW = hᵀ·dY', M: 4 * D, N: D, K: ROWS, transA: true },
  // The needle model (2_4_16) on its packed body (~16k rows): every product with N = d = 16.
  { name: 'needle x·Wproj', M: NEEDLE_ROWS, N: 16, K: 16 },
  { name: 'needle h·Wdown', M: NEEDLE_ROWS, N: 16, K: 64 },
  { name: 'needle dx qkv', M: NEEDLE_ROWS, N: 16, K: 48, transB: true },
  { name: 'needle dx up', M: NEEDLE_ROWS, N: 16, K: 64, transB: true },
  { name: 'needle dx proj', M: NEEDLE_ROWS, N: 16, K: 16, transB: true },
  // The width-64 needle model (2_4_64, batch 250: ~9k packed body rows): its weight gradients, M = d = 64.
  { name: 'w64 dW qkv', M: 64, N: 192, K: W64_ROWS, transA: true },
  { name: 'w64 dW proj', M: 64, N: 64, K: W64_ROWS, transA: true },
  { name: 'w64 dW up', M: 64, N: 256, K: W64_ROWS, transA: true },
  { name: 'w64 dW down', M: 256, N: 64, K: W64_ROWS, transA: true },
  { name: 'w32 dW qkv', M: 32, N: 96, K: W64_ROWS, transA: true },
  { name: 'w32 dW up', M: 32, N: 128, K: W64_ROWS, transA: true },
];

/** Extra cases on hardware adapters: a big square and GPT-2 small's products (batch 4 × context 1024). */
export const MATMUL_GPU_CASES: MatmulCase[] = [
  { name: '4096³', M: 4096, N: 4096, K: 4096 },
  { name: 'gpt2 qkv', M: 4096, N: 2304, K: 768 },
  { name: 'gpt2 mlp up', M: 4096, N: 3072, K: 768 },
  { name: 'gpt2 mlp down', M: 4096, N: 768, K: 3072 },
  { name: 'gpt2 lm head', M: 4096, N: 50257, K: 768, transB: true },
  { name: 'gpt2 dx head', M: 4096, N: 768, K: 50257 },
  { name: 'gpt2 dx qkv', M: 4096, N: 768, K: 2304, transB: true },
  { name: 'gpt2 dx mlp', M: 4096, N: 768, K: 3072, transB: true },
  { name: 'gpt2 dW qkv', M: 768, N: 2304, K: 4096, transA: true },
  { name: 'gpt2 dW proj', M: 768, N: 768, K: 4096, transA: true },
  { name: 'gpt2 dW mlp', M: 768, N: 3072, K: 4096, transA: true },
  { name: 'gpt2 dW down', M: 3072, N: 768, K: 4096, transA: true },
  { name: 'gpt2 dwte', M: 50257, N: 768, K: 4096, transA: true },
];

function randomData(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

type TF = Awaited<ReturnType<typeof loadTfjs>>;

export async function runMatmulBench(opts: MatmulBenchOptions = {}): Promise<MatmulBenchRow[]> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const e = opts.engine ?? (await Engine.create());
  const rounds = opts.rounds ?? (opts.quick ? 2 : 4);
  const rows: MatmulBenchRow[] = [];
  let tf: TF | null = null;
  if (opts.peer ?? true) {
    try {
      tf = await loadTfjs();
    } catch (err) {
      log(`(peer skipped: ${(err as Error).message})`);
    }
  }
  try {
    log(`adapter: ${e.device.describe()}${tf ? '; peer: TensorFlow.js WebGPU on the same Dawn adapter' : ''}`);
    // The variants compared are the plan's candidates (KINDLING_PLAN_AS may differ from the adapter);
    // the case list and the batched timing follow the adapter itself.
    const extra = opts.variants ?? (e.device.plan.kind === 'software' ? (hasSubgroupVariants(e) ? ['reg4x4', 'sg32x4', 'sg64x4', 'sg64x8'] : ['reg4x4']) : ['reg4x4', 'shared', 'shared128']);
    const hw = !e.device.info.software;
    let cases = opts.quick ? MATMUL_CASES.filter((c) => c.name !== '1024³') : hw ? [...MATMUL_CASES, ...MATMUL_GPU_CASES] : MATMUL_CASES;
    if (opts.cases?.length) cases = cases.filter((c) => opts.cases!.some((n) => c.name.includes(n)));
    log(`${'case'.padEnd(18)} ${'form'.padEnd(4)} ${'M×N×K'.padEnd(16)} ${'variant'.padEnd(16)} ${'ms'.padStart(9)} ${'GFLOP/s'.padStart(8)}   TF.js GFLOP/s  ours/TF.js`);
    for (const c of cases) {
      const { M, N, K } = c;
      const tA = !!c.transA;
      const tB = !!c.transB;
      const flops = 2 * M * N * K;
      const a = e.tensor(randomData(M * K, 1), tA ? [K, M] : [M, K]);
      const b = e.tensor(randomData(K * N, 2), tB ? [N, K] : [K, N]);
      const out = e.empty([M, N]);
      const auto = chooseMatmulVariant(e, M, N, K, 1, tB);
      const list = [`auto:${auto}`, ...extra.filter((v) => v !== auto)];
      // Software: one product and its readback per timing. Hardware: `reps` products (≈ 20 GFLOP in
      // all) in one submission and a wait, so launch and readback latency do not dominate.
      const reps = hw ? Math.max(1, Math.min(50, Math.round(2e10 / flops))) : 1;
      // Ours and TF.js keep hand-timed single calls: a round is one call of each, strictly alternating;
      // mitata's measure always adds an untimed call, which would double every round for both.
      const ours = async (name: string): Promise<number> => {
        const [variant, split] = name.split('/s');
        const splitK = split ? { splitK: Number(split) } : {};
        const t0 = performance.now();
        for (let r = 0; r < reps; r++) encodeMatmul(e, a, b, out, { M, N, K, transA: tA, transB: tB, variant: variant!, ...splitK });
        if (hw) await e.sync();
        else await out.read();
        return (performance.now() - t0) / reps;
      };
      let theirs: (() => Promise<number>) | null = null;
      let tfA: { dispose(): void } | null = null;
      let tfB: { dispose(): void } | null = null;
      if (tf) {
        const ta = tf.tensor2d(randomData(M * K, 1), tA ? [K, M] : [M, K]);
        const tb = tf.tensor2d(randomData(K * N, 2), tB ? [N, K] : [K, N]);
        tfA = ta;
        tfB = tb;
        const tfr = tf;
        let calls = 0;
        theirs = async () => {
          const t0 = performance.now();
          for (let i = 1; i < reps; i++) tfr.matMul(ta, tb, tA, tB).dispose();
          const r = tfr.matMul(ta, tb, tA, tB);
          // Every other call waits through kindling's throttled poll (engine/wait.ts) instead of
          // Dawn's spinning one; the best time of either kind is kept.
          await (calls++ % 2 ? gpuWait(r.data()) : r.data());
          r.dispose();
          return (performance.now() - t0) / reps;
        };
      }
      const best = new Map<string, number>();
      let tfBest = Infinity;
      // Warm-up: compile every kernel once; a variant the shape cannot take (a split-K scratch over
      // the binding limit, say) is reported and dropped.
      for (const v of [...list]) {
        try {
          await ours(v.replace(/^auto:/, ''));
        } catch (err) {
          log(`${c.name.padEnd(18)} ${v}: skipped (${(err as Error).message.split('\n')[0]})`);
          list.splice(list.indexOf(v), 1);
        }
      }
      if (theirs) await theirs();
      for (let r = 0; r < rounds; r++) {
        for (const v of list) {
          best.set(v, Math.min(best.get(v) ?? Infinity, await ours(v.replace(/^auto:/, ''))));
          if (theirs) tfBest = Math.min(tfBest, await theirs());
        }
      }
      for (const v of list) {
        const ms = best.get(v)!;
        const row: MatmulBenchRow = { case: c.name, form: `${tA ? 't' : 'n'}${tB ? 't' : 'n'}`, M, N, K, variant: v, ms, gflops: flops / (ms * 1e6) };
        if (theirs) {
          row.tfjsMs = tfBest;
          row.tfjsGflops = flops / (tfBest * 1e6);
          row.ratio = row.gflops / row.tfjsGflops;
        }
        rows.push(row);
        log(
          `${c.name.padEnd(18)} ${row.form.padEnd(4)} ${`${M}×${N}×${K}`.padEnd(16)} ${v.padEnd(16)} ${ms.toFixed(2).padStart(9)} ${row.gflops.toFixed(2).padStart(8)}` +
            (row.tfjsGflops !== undefined ? `   ${row.tfjsGflops.toFixed(2).padStart(13)}  ${row.ratio!.toFixed(2).padStart(9)}×` : ''),
        );
      }
      a.dispose();
      b.dispose();
      out.dispose();
      tfA?.dispose();
      tfB?.dispose();
    }
  } finally {
    if (!opts.engine) e.destroy();
    if (tf) await releaseTfjs();
  }
  return rows;
}

export interface CeilingFraction {
  rounds: { gflops: number; ceiling: number }[];
  /** Median over rounds of 1024³ GFLOP/s ÷ that round's ceiling, in percent. */
  median: number;
  /** Best 1024³ rate ÷ best ceiling, in percent. */
  best: number;
}

/** 1024³ (automatic variant) against the unrolled-FMA ceiling, in alternating rounds. */
export async function ceilingFraction(e: Engine, rounds = 5): Promise<CeilingFraction> {
  const n = 1024;
  const a = e.tensor(randomData(n * n, 1), [n, n]);
  const b = e.tensor(randomData(n * n, 2), [n, n]);
  const c = e.empty([n, n]);
  const out: { gflops: number; ceiling: number }[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const ceiling = (await runRooflineBench(e)).fmaGflops.x8!;
      // Best of 3 after one untimed product (the roofline's kernels ran in between).
      const { min: ms } = await wallTime(
        async () => {
          encodeMatmul(e, a, b, c, { M: n, N: n, K: n });
          await e.sync();
        },
        { warmup: 1, minSamples: 3, maxSamples: 3 },
      );
      out.push({ gflops: (2 * n ** 3) / (ms * 1e6), ceiling });
    }
  } finally {
    a.dispose();
    b.dispose();
    c.dispose();
  }
  const fr = out.map((r) => (100 * r.gflops) / r.ceiling).sort((x, y) => x - y);
  const best = (100 * Math.max(...out.map((r) => r.gflops))) / Math.max(...out.map((r) => r.ceiling));
  return { rounds: out, median: fr[fr.length >> 1]!, best };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const variants = args.find((x) => x.startsWith('--variants='))?.slice('--variants='.length);
  const cases = args.find((x) => x.startsWith('--cases='))?.slice('--cases='.length);
  const engine = await Engine.create();
  try {
    const rows = await runMatmulBench({
      engine,
      quick: args.includes('--quick'),
      peer: !args.includes('--no-peer'),
      ...(variants ? { variants: variants.split(',').filter(Boolean) } : {}),
      ...(cases ? { cases: cases.split(',') } : {}),
    });
    const tf = rows.find((x) => x.case === '1024³' && x.variant.startsWith('auto:'));
    if (tf?.tfjsGflops) console.log(`1024³: ${tf.gflops.toFixed(2)} GFLOP/s, ${tf.ratio!.toFixed(1)}× TF.js WebGPU (${tf.tfjsGflops.toFixed(2)} GFLOP/s)`);
    if (!args.includes('--quick')) {
      // 1024³ against the unrolled-FMA ceiling, measured in alternating rounds (this machine drifts
      // by ±40% over minutes): each round times the ceiling (best of 8) and 1024³ (best of 3).
      const f = await ceilingFraction(engine, 5);
      console.log(
        `1024³ vs the unrolled-FMA ceiling, ${f.rounds.length} alternating rounds: median ${f.median.toFixed(0)}% ` +
          `(rounds ${f.rounds.map((r) => `${r.gflops.toFixed(1)}/${r.ceiling.toFixed(1)}`).join(', ')} GFLOP/s); ` +
          `best/best ${f.best.toFixed(0)}%`,
      );
    }
  } finally {
    engine.destroy();
  }
}
