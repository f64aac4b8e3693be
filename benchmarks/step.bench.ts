/**
 * End-to-end training-step benchmark (issue 6): forward, backward, clipping and AdamW of a GPT-2 at
 *   (a) vocab 512, context 128, d 128, 4 heads, 2 layers, batch 16 (tied head)
 *   (b) the needle model 2_4_16, vocab 256, context 63, batch 1000 (untied head)
 *   (g) GPT-2 small 12_12_768, vocab 50257, context 1024, batch 4 (tied head; hardware adapters)
 * reporting ms/step, tokens/s, dispatches and submits per step, bytes allocated per steady-state
 * step and achieved GFLOP/s; then the same step in TensorFlow.js WebGPU (same adapter, same run) and
 * PyTorch (when /usr/bin/python3 or python3 on the PATH has torch: on the CPU, or through CUDA when
 * the engine runs on a GPU; KINDLING_TORCH_PYTHON / KINDLING_TORCH_DEVICE override), alternating engine and peer runs so drift on a
 * noisy machine hits both, and printing the ratios. With --profile, a per-kernel table of one step.
 *
 *   node --import tsx benchmarks/step.bench.ts [a|b|g|all] [--steps N] [--rounds N] [--no-peers] [--profile] [--trace file.json]
 *   node --import tsx benchmarks/step.bench.ts needle [--steps N] [--rounds N] [--no-peers] [--no-dense] [--profile] [--buckets 1,2,auto]
 *   node --import tsx benchmarks/step.bench.ts [a|b|g|all] --precision [f16,bf16] [--steps N] [--rounds N] [--profile]
 *   node --import tsx benchmarks/step.bench.ts [a|b|g|needle|all] --gelu-ab|--attention-ab [--steps N] [--rounds N]
 *
 * `needle` is shape (b) with the downstream needle task's loss mask (one loss position per row): the
 * dense step and the sparse one (see GPT.uploadBatch) beside the PyTorch CPU peer; it prints last one
 * JSON line {"shape": "needle", "ms_per_step": X, "torch_ms_per_step": Y}. --buckets times the listed
 * `UploadOptions.buckets` settings in turn in every round (1: the unsplit sparse step); ms_per_step is
 * the default ('auto') setting's best.
 *
 * `--precision` times each shape's step in f32 and in f16 / bf16 (mixed precision,
 * engine/precision.ts), alternating, and prints the ratios (see precisionMain).
 *
 * Peers alternate with the engine in rounds (default 3 for shape a, 1 for b, whose TF.js step takes
 * ~20 s): each round's ratio compares TF.js with the faster engine run on either side of it, and the
 * table reports the median ratio over rounds and its range. ms/step is the engine's best run.
 * kindling's steps are timed with mitata (benchmarks/timing.ts), two per timed call (both in flight,
 * then a wait); the peers keep their own timing.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { backward } from '../engine/autograd.ts';
import { Engine } from '../engine/engine.ts';
import { AdamW } from '../engine/optim.ts';
import { LossScaler, type Precision, setPrecision } from '../engine/precision.ts';
import { makeConfig } from '../src/model/config.ts';
import { GPT, type UploadOptions } from '../src/model/gpt.ts';
import { gpuWait } from '../engine/wait.ts';
import { openblasDir, runTorchGptStep } from './peers/torch_gpt.ts';
import { wallTime } from './timing.ts';

export interface StepShape {
  name: 'a' | 'b' | 'g' | 'needle';
  vocab: number;
  context: number;
  size: string;
  batch: number;
  tied: boolean;
  /** Loss mask: every position (default), or the needle task's one position per row at 2n, n in 1..30. */
  mask?: 'all' | 'needle';
}

export const STEP_SHAPES: Record<'a' | 'b' | 'g', StepShape> = {
  a: { name: 'a', vocab: 512, context: 128, size: '2_4_128', batch: 16, tied: true },
  b: { name: 'b', vocab: 256, context: 63, size: '2_4_16', batch: 1000, tied: false },
  // GPT-2 small (124M parameters) at its full context: the number to report on a real GPU. A step is
  // ~2.6 TFLOP (about two minutes on lavapipe), so `all` runs it on hardware adapters only.
  g: { name: 'g', vocab: 50257, context: 1024, size: '12_12_768', batch: 4, tied: true },
};

/**
 * The downstream needle step: shape (b)'s model and batch with the needle task's loss mask (one
 * position per row), whose loss reads logits at 1000 of the 63 000 positions.
 */
export const NEEDLE_SHAPE: StepShape = { ...STEP_SHAPES.b, name: 'needle', mask: 'needle' };

/** FLOPs of one training step (forward + backward ≈ 3× forward), counting matmuls and attention. */
export function stepFlops(s: StepShape): number {
  const [L, , d] = s.size.split('_').map(Number) as [number, number, number];
  const N = s.batch * s.context;
  const perLayer = 2 * N * d * 3 * d + 2 * N * d * d + 2 * 2 * N * d * 4 * d; // qkv, proj, mlp
  const attn = 2 * 2 * s.batch * s.context * s.context * d * 0.5; // causal half of qkᵀ and att·v
  const head = 2 * N * d * s.vocab;
  return 3 * (L * (perLayer + attn) + head);
}

export interface EngineStepResult {
  shape: string;
  msPerStep: number;
  /** CPU time of this process per step (all threads: on lavapipe that includes the driver's workers). */
  cpuMsPerStep: number;
  /**
   * Wall ms per step spent recording and submitting it (the JavaScript of the forward, backward and
   * optimizer, and Dawn's encoding), without waiting: when it nears msPerStep, the step is bound by
   * the host, not by the device (the benchmark keeps two steps in flight, so one step's recording
   * overlaps the previous one's execution).
   */
  recordMsPerStep: number;
  tokensPerS: number;
  gflops: number;
  dispatchesPerStep: number;
  submitsPerStep: number;
  bytesAllocatedPerStep: number;
  bindGroupsPerStep: number;
  poolBytes: number;
  loss: number;
}

/** A model, optimizer and fixed batch; `step()` records and submits one training step. */
export async function createEngineStep(engine: Engine, s: StepShape, upload: UploadOptions = {}, precision: Precision = 'f32') {
  const cfg = makeConfig({ size: s.size, vocabSize: s.vocab, nPositions: s.context, tied: s.tied, dropout: 0 });
  const model = GPT.create(engine, cfg, { seed: 0 });
  // Precision f16 / bf16: half matmul operands (f16 with a dynamic loss scale), as the Trainer sets them up.
  setPrecision(engine, precision);
  const scaler = precision === 'f16' ? new LossScaler(engine) : null; // bf16: f32's range, no scale
  const opt = new AdamW(model.params, { weightDecay: 0.1, maxGradNorm: 1, ...(scaler ? { lossScaler: scaler } : {}) });
  const B = s.batch;
  const T = s.context;
  let x = 12345;
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % s.vocab;
  const ids = Int32Array.from({ length: B * T }, rnd);
  const targets = Int32Array.from({ length: B * T }, rnd);
  const lossMask = new Float32Array(B * T).fill(s.mask === 'needle' ? 0 : 1);
  if (s.mask === 'needle')
    for (let r = 0; r < B; r++) {
      const n = 1 + ((((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % 30) | 0);
      lossMask[r * T + 2 * n] = 1;
    }
  const batch = { ids, targets, lossMask, batch: B, seqLen: T };
  let last: import('../engine/tensor.ts').Tensor | null = null;
  return {
    model,
    opt,
    batch,
    step(): void {
      last?.dispose();
      last = engine.tidy(() => {
        const d = model.uploadBatch(batch, upload);
        model.params.zeroGrad();
        engine.startGrad();
        const { loss } = model.loss(d, { train: true });
        backward(loss, scaler?.seed);
        opt.step(5e-4);
        return loss;
      });
      engine.flush();
    },
    async loss(): Promise<number> {
      return last ? (await last.read())[0]! : NaN;
    },
    destroy(): void {
      last?.dispose();
      opt.destroy();
      scaler?.destroy();
      model.destroy();
      setPrecision(engine, 'f32');
    },
  };
}

/**
 * Time `steps` steps of our engine, at most two in flight: each timed call records and submits two
 * steps and waits for both (the last call one step when `steps` is odd), after an untimed call of two.
 */
export async function benchEngineStep(engine: Engine, s: StepShape, steps: number, upload: UploadOptions = {}, precision: Precision = 'f32'): Promise<EngineStepResult> {
  const st = await createEngineStep(engine, s, upload, precision);
  const warmup = 1;
  steps = Math.max(1, steps);
  const calls = Math.ceil(steps / 2);
  let call = 0;
  // Steps, counters, pool and CPU time of each call; the timed calls are the last `samples.length`.
  const log: { steps: number; c0: Engine['counters']; c1: Engine['counters']; p0: number; p1: number; cpuUs: number; recordMs: number }[] = [];
  const { total, samples } = await wallTime(
    async () => {
      const j = call++ - warmup; // index of the timed call (negative: warm-up)
      const k = j < 0 ? 2 : Math.min(2, steps - 2 * j);
      const c0 = { ...engine.counters };
      const p0 = engine.pool.stats().allocatedBytes;
      const u0 = process.cpuUsage();
      let recordMs = 0;
      for (let i = 0; i < k; i++) {
        const t0 = performance.now();
        st.step();
        recordMs += performance.now() - t0;
      }
      await gpuWait(engine.gpu.queue.onSubmittedWorkDone());
      const u1 = process.cpuUsage(u0);
      log.push({ steps: k, c0, c1: { ...engine.counters }, p0, p1: engine.pool.stats().allocatedBytes, cpuUs: u1.user + u1.system, recordMs });
    },
    { warmup, minSamples: calls, maxSamples: calls },
  );
  await engine.sync(); // surfaces errors (the work is done already)
  const timed = log.slice(log.length - samples.length);
  const sum = (f: (d: (typeof timed)[number]) => number) => timed.reduce((a, d) => a + f(d), 0);
  steps = sum((d) => d.steps);
  const ms = total / steps;
  const c0 = timed[0]!.c0;
  const c1 = timed.at(-1)!.c1;
  const loss = await st.loss();
  const res: EngineStepResult = {
    shape: s.name,
    msPerStep: ms,
    cpuMsPerStep: sum((d) => d.cpuUs) / 1000 / steps,
    recordMsPerStep: sum((d) => d.recordMs) / steps,
    tokensPerS: (s.batch * s.context * 1000) / ms,
    gflops: stepFlops(s) / (ms * 1e6),
    dispatchesPerStep: (c1.dispatches - c0.dispatches) / steps,
    submitsPerStep: (c1.submits - c0.submits) / steps,
    bindGroupsPerStep: (c1.bindGroupsCreated - c0.bindGroupsCreated) / steps,
    bytesAllocatedPerStep: sum((d) => d.p1 - d.p0) / steps,
    poolBytes: timed.at(-1)!.p1,
    loss,
  };
  st.destroy();
  return res;
}

/** Per-kernel profile of one steady-state step. */
export async function profileEngineStep(engine: Engine, s: StepShape, tracePath?: string, upload: UploadOptions = {}, precision: Precision = 'f32'): Promise<string> {
  const st = await createEngineStep(engine, s, upload, precision);
  st.step();
  await engine.sync();
  engine.profiler.start();
  st.step();
  const p = await engine.profiler.stop();
  if (tracePath) writeFileSync(tracePath, p.chromeTrace());
  st.destroy();
  return p.table();
}

/**
 * Procedural data generation against the step of the model it feeds (issue 5's budget): the default
 * sort batch (64 × 129, V 100 → vocab 102) on the 2_4_16 model, and the Dyck micro-batch (4 × 2048,
 * k 64 → vocab 129) on 2_4_16.
 */
export async function dataVsStep(engine: Engine, steps = 3): Promise<string[]> {
  const { createTask } = await import('../src/data/procedural/registry.ts');
  const { Batcher } = await import('../src/data/procedural/batch.ts');
  const out: string[] = [];
  for (const [label, task, B] of [
    ['sort 64×129', createTask('sort', {}), 64],
    ['dyck 4×2048', createTask('dyck', {}), 4],
  ] as const) {
    const batcher = new Batcher(task, B);
    const { avg: genMs } = await wallTime(() => void batcher.next(), { warmup: 1, minSamples: 5, maxSamples: 5 });
    const shape: StepShape = { name: 'a', vocab: task.vocabSize, context: task.contextLength, size: '2_4_16', batch: B, tied: true };
    const r = await benchEngineStep(engine, shape, steps);
    out.push(`${label.padEnd(12)}  generate ${genMs.toFixed(2)} ms  step ${r.msPerStep.toFixed(1)} ms  → ${((100 * genMs) / r.msPerStep).toFixed(2)}% of a step`);
  }
  return out;
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

/**
 * The needle step (`step.bench.ts needle`): the dense step (logits and loss at every position, as
 * before the sparse path existed) once, then the sparse step (cut batch, head and loss at the loss
 * rows only) alternating with the PyTorch CPU peer computing the same step its best way. Prints the
 * dispatch counts and ms of both, optionally a profile, and last one JSON line.
 */
async function needleMain(engine: Engine, args: string[], steps: number): Promise<void> {
  const s = NEEDLE_SHAPE;
  const peers = !args.includes('--no-peers');
  const rounds = args.includes('--rounds') ? Math.max(1, Number(args[args.indexOf('--rounds') + 1])) : 2;
  const line = (tag: string, r: EngineStepResult) =>
    console.log(`[needle] ${tag}: ${fmt(r.msPerStep)} ms/step (CPU ${fmt(r.cpuMsPerStep, 0)} ms/step; recording on the host ${fmt(r.recordMsPerStep, 2)} ms/step), ${fmt(r.dispatchesPerStep, 0)} dispatches/step, ${fmt(r.submitsPerStep, 0)} submit(s), loss ${r.loss.toFixed(5)}`);
  if (!args.includes('--no-dense')) line('dense (every position, as before)', await benchEngineStep(engine, s, Math.min(steps, 3), { sparse: false }));
  const ours: EngineStepResult[] = [];
  const torch: number[] = [];
  const blas = openblasDir();
  const bucketsArg = args.indexOf('--buckets');
  const compare = bucketsArg >= 0 ? args[bucketsArg + 1]!.split(',').map((v) => (v === 'auto' ? 'auto' : Number(v))) : ['auto' as const];
  {
    const st = await createEngineStep(engine, s);
    const b = engine.tidy(() => st.model.uploadBatch(st.batch).sparse?.packed?.buckets.map((k) => `${k.batch}×${k.seqLen}`));
    console.log(`[needle] 'auto' buckets (rows × T'): ${b ? b.join(', ') : 'none'}`);
    st.destroy();
  }
  for (let round = 0; round < rounds; round++) {
    for (const buckets of compare) {
      const r = await benchEngineStep(engine, s, steps, { buckets });
      if (buckets === 'auto') ours.push(r);
      line(`sparse (loss rows only, ${buckets === 1 ? 'one cut batch' : `bucketed by last loss position (${buckets})`})`, r);
    }
    if (!peers) continue;
    const tr = await runTorchGptStep('needle', { warmup: 1, steps: 3, ...(blas ? { env: { LD_LIBRARY_PATH: blas } } : {}) }).catch((e: Error) => ({ unavailable: e.message.split('\n')[0]! }));
    if ('unavailable' in tr) {
      console.log(`[needle] PyTorch peer unavailable: ${tr.unavailable}`);
      break;
    }
    torch.push(tr.msPerStep);
    console.log(`[needle] PyTorch ${tr.torch} cpu (${tr.threads} thread(s), BLAS ${tr.blas.split('/').at(-1)}), same step its best way: ${fmt(tr.msPerStep)} ms/step (CPU ${fmt(tr.cpuMsPerStep, 0)} ms/step; losses ${tr.losses[0]!.toFixed(5)} → ${tr.losses.at(-1)!.toFixed(5)})`);
  }
  if (args.includes('--profile')) {
    const traceArg = args.indexOf('--trace');
    console.log(`\nprofile of one sparse needle step:\n${await profileEngineStep(engine, s, traceArg >= 0 ? args[traceArg + 1] : undefined)}\n`);
  }
  const best = ours.length ? Math.min(...ours.map((r) => r.msPerStep)) : NaN;
  const tBest = torch.length ? Math.min(...torch) : null;
  console.log(JSON.stringify({ shape: 'needle', ms_per_step: Number(best.toFixed(1)), torch_ms_per_step: tBest === null ? null : Number(tBest.toFixed(1)) }));
}

/**
 * `--precision [f16,bf16]`: the step of each shape in f32 and in each listed half precision (half
 * matmul operands, f32 accumulation; f16 with its loss scale; engine/precision.ts), alternating f32,
 * f16, bf16, f32, … for `rounds` rounds, then the best of each, its ratio to f32 and the dispatch
 * counts; `--profile` adds each half precision's kernel table. f16 needs `shader-f16` (on NVIDIA
 * through Vulkan: KINDLING_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia) and is left out without it.
 */
type Which = 'a' | 'b' | 'g' | 'needle' | 'all';

/** The shapes a comparison times: one, or all (GPT-2 small only on a hardware adapter; the sparse needle step where asked). */
function comparisonShapes(which: Which, engine: Engine, withNeedle = false): StepShape[] {
  if (which === 'needle') return [NEEDLE_SHAPE];
  if (which !== 'all') return [STEP_SHAPES[which]];
  return [STEP_SHAPES.a, STEP_SHAPES.b, ...(withNeedle ? [NEEDLE_SHAPE] : []), ...(engine.device.info.software ? [] : [STEP_SHAPES.g])];
}

/** The shape (a, b, g, needle or all), --steps and --rounds of an alternating comparison. */
function comparisonArgs(args: string[], defaultRounds: number): { which: Which; steps: number; rounds: number } {
  const which = (args.find((a) => /^(a|b|g|needle|all)$/.test(a)) ?? 'a') as Which;
  const stepsArg = args.indexOf('--steps');
  const roundsArg = args.indexOf('--rounds');
  return {
    which,
    steps: stepsArg >= 0 ? Number(args[stepsArg + 1]) : 6,
    rounds: roundsArg >= 0 ? Math.max(1, Number(args[roundsArg + 1])) : defaultRounds,
  };
}

async function precisionMain(args: string[]): Promise<void> {
  const { which, steps, rounds } = comparisonArgs(args, 2);
  const listArg = args[args.indexOf('--precision') + 1];
  const listed = (listArg && /^(f16|bf16)(,(f16|bf16))*$/.test(listArg) ? listArg.split(',') : ['f16', 'bf16']) as Precision[];
  const engine = await Engine.create();
  const f16 = engine.device.features.has('shader-f16');
  console.log(`adapter: ${engine.device.describe()}; shader-f16: ${f16 ? 'yes' : 'no (f16 left out)'}`);
  const halves = listed.filter((p) => p !== 'f16' || f16);
  const rows: string[] = [];
  try {
    for (const s of comparisonShapes(which, engine)) {
      const best = new Map<Precision, EngineStepResult>();
      for (let r = 0; r < rounds; r++)
        for (const p of ['f32', ...halves] as Precision[]) {
          const res = await benchEngineStep(engine, s, steps, {}, p);
          console.log(`[${s.name}] round ${r + 1} ${p}: ${fmt(res.msPerStep)} ms/step, loss ${res.loss.toFixed(5)}`);
          if (!best.has(p) || res.msPerStep < best.get(p)!.msPerStep) best.set(p, res);
        }
      const a = best.get('f32')!;
      for (const p of ['f32', ...halves] as Precision[]) {
        const b = best.get(p)!;
        rows.push(`${s.name}      ${p.padEnd(5)}  ${fmt(b.msPerStep).padStart(9)}  ${fmt(a.msPerStep / b.msPerStep, 2).padStart(7)}×  ${fmt(b.dispatchesPerStep, 0).padStart(6)}  ${b.loss.toFixed(5)}`);
      }
      if (args.includes('--profile')) for (const p of halves) console.log(`\nprofile of one ${p} step, shape ${s.name}:\n${await profileEngineStep(engine, s, undefined, {}, p)}\n`);
    }
    console.log('\nshape  precision  ms/step  vs f32 (faster)  disp/st  loss');
    for (const r of rows) console.log(r);
  } finally {
    engine.destroy();
  }
}

/** The plan switches `--gelu-ab` and `--attention-ab` compare (a device option each, engine/plan.ts). */
const PLAN_AB = {
  gelu: { option: 'geluInProducts', off: 'GELU kernels', on: 'GELU in products', bench: 'gelu-ab', plan: (e: Engine) => e.plan.matmul.geluInProducts },
  attention: { option: 'blockAttention', off: 'tiled/sg attention', on: 'block attention', bench: 'attention-ab', plan: (e: Engine) => e.plan.attention.block },
} as const;

/**
 * `--gelu-ab` / `--attention-ab`: the step of each shape with a plan switch on and off — the MLP's
 * GELU inside its products (`plan.matmul.geluInProducts`), attention on the block kernels
 * (`plan.attention.block`) — on two engines of one adapter and plan kind, alternating for `rounds`
 * rounds, then the best of each, the ratio, the dispatch counts and the losses (equal up to float32
 * rounding). On a GPU: what the change buys; on lavapipe the software plan's defaults are off, so
 * the A/B there measures the new path on the software plan's other kernels.
 */
async function planAbMain(args: string[], which: keyof typeof PLAN_AB): Promise<void> {
  const ab = PLAN_AB[which];
  const { which: shapes, steps, rounds } = comparisonArgs(args, 3);
  const base = await Engine.create();
  const onByDefault = ab.plan(base);
  const other = await Engine.create({ [ab.option]: !onByDefault });
  const engines = new Map<boolean, Engine>([
    [onByDefault, base],
    [!onByDefault, other],
  ]);
  const w = Math.max(ab.off.length, ab.on.length);
  console.log(`adapter: ${base.device.describe()}; ${ab.on} by default: ${onByDefault ? 'yes' : 'no'}`);
  const rows: string[] = [];
  try {
    for (const s of comparisonShapes(shapes, base, true)) {
      const best = new Map<boolean, EngineStepResult>();
      for (let r = 0; r < rounds; r++)
        for (const on of [false, true]) {
          const res = await benchEngineStep(engines.get(on)!, s, steps);
          console.log(`[${s.name}] round ${r + 1} ${(on ? ab.on : ab.off).padEnd(w)}: ${fmt(res.msPerStep)} ms/step, ${fmt(res.dispatchesPerStep, 0)} dispatches, loss ${res.loss.toFixed(5)}`);
          if (!best.has(on) || res.msPerStep < best.get(on)!.msPerStep) best.set(on, res);
        }
      const off = best.get(false)!;
      const on = best.get(true)!;
      rows.push(`${s.name}      ${fmt(off.msPerStep).padStart(ab.off.length)}  ${fmt(on.msPerStep).padStart(ab.on.length)}  ${fmt(off.msPerStep / on.msPerStep, 2).padStart(6)}×  ${fmt(off.dispatchesPerStep, 0).padStart(4)} → ${fmt(on.dispatchesPerStep, 0).padEnd(4)}  ${off.loss.toFixed(5)} / ${on.loss.toFixed(5)}`);
      console.log(JSON.stringify({ bench: ab.bench, shape: s.name, off_ms_per_step: off.msPerStep, on_ms_per_step: on.msPerStep, off_dispatches: off.dispatchesPerStep, on_dispatches: on.dispatchesPerStep }));
    }
    console.log(`\nshape  ${ab.off}  ${ab.on}  faster  dispatches   loss (${ab.off} / ${ab.on})`);
    for (const r of rows) console.log(r);
  } finally {
    base.destroy();
    other.destroy();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  for (const which of ['gelu', 'attention'] as const)
    if (args.includes(`--${which}-ab`)) {
      // Before the needle branch: `needle --gelu-ab` is a comparison too.
      await planAbMain(args, which);
      return;
    }
  if (args.includes('needle')) {
    const stepsArg = args.indexOf('--steps');
    const engine = await Engine.create();
    console.log(`adapter: ${engine.device.describe()}`);
    try {
      await needleMain(engine, args, stepsArg >= 0 ? Number(args[stepsArg + 1]) : 6);
    } finally {
      engine.destroy();
    }
    return;
  }
  if (args.includes('--precision')) {
    await precisionMain(args);
    return;
  }
  const which = (args.find((a) => /^(a|b|g|all)$/.test(a)) ?? 'all') as 'a' | 'b' | 'g' | 'all';
  const stepsArg = args.indexOf('--steps');
  const steps = stepsArg >= 0 ? Number(args[stepsArg + 1]) : 6;
  const peers = !args.includes('--no-peers');
  const traceArg = args.indexOf('--trace');
  const roundsArg = args.indexOf('--rounds');
  const engine = await Engine.create();
  const shapes = which === 'all' ? [STEP_SHAPES.a, STEP_SHAPES.b, ...(engine.device.info.software ? [] : [STEP_SHAPES.g])] : [STEP_SHAPES[which]];
  console.log(`adapter: ${engine.device.describe()}`);
  const rows: string[] = [];
  try {
    for (const s of shapes) {
      // Rounds alternate ours and TF.js: ours₀, tf₁, ours₁, tf₂, ours₂, … Each round's ratio compares
      // TF.js with the faster of the engine runs on either side of it (drift hits both), and the
      // table gives the median over rounds with their range. PyTorch runs once, between rounds.
      const rounds = roundsArg >= 0 ? Math.max(1, Number(args[roundsArg + 1])) : s.name === 'a' ? 3 : 1;
      const ours: EngineStepResult[] = [await benchEngineStep(engine, s, steps)];
      console.log(`[${s.name}] kindling: ${fmt(ours[0]!.msPerStep)} ms/step, ${fmt(ours[0]!.recordMsPerStep, 2)} ms of it recording on the host (loss after ${steps + 2} steps ${ours[0]!.loss.toFixed(5)})`);
      const tfRounds: { asIs: number; quiet: number; ratio: number; ratioAsIs: number }[] = [];
      let torch: number | null = null;
      let torchNote = '';
      let tf: Awaited<ReturnType<typeof import('./peers/tfjs_gpt.ts').createTfjsGptStep>> | null = null;
      if (peers) {
        try {
          const { createTfjsGptStep, GPT_SHAPES } = await import('./peers/tfjs_gpt.ts');
          tf = await createTfjsGptStep(GPT_SHAPES[s.name as 'a' | 'b' | 'g']);
          await tf.step();
        } catch (e) {
          console.log(`[${s.name}] TF.js peer unavailable: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      const peerSteps = s.name === 'a' ? Math.max(2, Math.min(3, steps)) : 1;
      for (let round = 1; round <= (peers ? rounds : 0); round++) {
        let asIs = NaN;
        let quiet = NaN;
        if (tf) {
          // TF.js waits through Dawn's spinning poll (engine/wait.ts); time it as it comes and with
          // the same throttled wait our engine uses; the ratio uses the faster of the two.
          const t = tf;
          // Hand-timed, not mitata: its measure always adds an untimed call, a whole extra TF.js step (~20 s for b) per round.
          const timeTf = async (throttled: boolean): Promise<number> => {
            const t0 = performance.now();
            for (let i = 0; i < peerSteps; i++) await (throttled ? gpuWait(t.step()) : t.step());
            return (performance.now() - t0) / peerSteps;
          };
          asIs = await timeTf(false);
          quiet = await timeTf(true);
        }
        if (round === 1) {
          const { runTorchGptStep } = await import('./peers/torch_gpt.ts');
          // On a GPU adapter the peer runs on CUDA (falling back to the CPU where torch has none)
          // unless KINDLING_TORCH_DEVICE says otherwise.
          const torchSteps = Math.max(2, Math.min(5, steps));
          const auto = !process.env.KINDLING_TORCH_DEVICE && !engine.device.info.software;
          const torchRun = (device?: string) =>
            runTorchGptStep(s.name as 'a' | 'b' | 'g', { warmup: 1, steps: torchSteps, ...(device ? { device } : {}) }).catch((e: Error) => ({ unavailable: e.message.split('\n')[0]! }));
          let tr = await torchRun(auto ? 'cuda' : undefined);
          if (auto && 'unavailable' in tr) tr = await torchRun('cpu');
          if ('unavailable' in tr) {
            torchNote = tr.unavailable;
            console.log(`[${s.name}] PyTorch peer unavailable: ${torchNote}`);
          }
          else {
            torch = tr.msPerStep;
            console.log(`[${s.name}] PyTorch ${tr.torch} ${tr.device}, float32: ${fmt(torch)} ms/step`);
            if (tr.device !== 'cpu') {
              // On CUDA also the TF32 tensor-core number, for scale (the table keeps strict float32).
              const t32 = await runTorchGptStep(s.name, { warmup: 1, steps: torchSteps, device: 'cuda', tf32: true }).catch(() => ({ unavailable: '' }));
              if (!('unavailable' in t32)) console.log(`[${s.name}] PyTorch ${t32.device}, TF32 matmuls: ${fmt(t32.msPerStep)} ms/step`);
            }
          }
        }
        const r = await benchEngineStep(engine, s, steps);
        ours.push(r);
        if (tf) {
          const near = Math.min(ours[ours.length - 2]!.msPerStep, r.msPerStep);
          const best = Math.min(asIs, quiet);
          tfRounds.push({ asIs, quiet, ratio: best / near, ratioAsIs: asIs / near });
          console.log(
            `[${s.name}] round ${round}: TF.js WebGPU ${fmt(best)} ms/step (as it comes ${fmt(asIs)}, with kindling's throttled wait ${fmt(quiet)}); ` +
              `kindling ${fmt(near)} → ${fmt(best / near, 1)}× (${fmt(asIs / near, 1)}× TF.js as it comes)`,
          );
        } else console.log(`[${s.name}] kindling: ${fmt(r.msPerStep)} ms/step (${fmt(r.recordMsPerStep, 2)} ms of it recording on the host)`);
      }
      tf?.dispose();
      const r = ours.reduce((a, b) => (b.msPerStep < a.msPerStep ? b : a));
      if (tf) console.log(`[${s.name}] kindling's fastest timing: ${fmt(r.msPerStep)} ms/step, ${fmt(r.recordMsPerStep, 2)} ms of it recording on the host`);
      const med = (xs: number[]) => {
        const o = xs.slice().sort((a, b) => a - b);
        return o.length % 2 ? o[o.length >> 1]! : (o[o.length / 2 - 1]! + o[o.length / 2]!) / 2;
      };
      let tfCell = '        -';
      if (tfRounds.length) {
        const ratios = tfRounds.map((t) => t.ratio);
        const asIsRatios = tfRounds.map((t) => t.ratioAsIs);
        const range = (xs: number[]) => (xs.length > 1 ? ` ${fmt(Math.min(...xs), 1)}–${fmt(Math.max(...xs), 1)}` : '');
        tfCell = `${fmt(med(tfRounds.map((t) => Math.min(t.asIs, t.quiet))), 0).padStart(9)} (${fmt(med(ratios), 1)}×${range(ratios)}; as it comes ${fmt(med(asIsRatios), 1)}×${range(asIsRatios)})`;
        if (tfRounds.length > 1) console.log(`[${s.name}] TF.js over ${tfRounds.length} rounds: median ${fmt(med(ratios), 1)}× (range${range(ratios)}); as it comes ${fmt(med(asIsRatios), 1)}×`);
      }
      rows.push(
        `${s.name}  ${fmt(r.msPerStep).padStart(9)}  ${fmt(r.tokensPerS, 0).padStart(9)}  ${fmt(r.gflops, 2).padStart(7)}  ${fmt(r.dispatchesPerStep, 0).padStart(6)}  ${fmt(
          r.submitsPerStep,
          0,
        ).padStart(6)}  ${fmt(r.bytesAllocatedPerStep, 0).padStart(8)}  ${tfCell}  ${
          torch ? fmt(torch, 1).padStart(8) + ' (' + fmt(torch / r.msPerStep, 2) + '×)' : torchNote ? 'n/a' : '-'
        }`,
      );
      if (args.includes('--profile')) console.log(`\nprofile of one step, shape ${s.name}:\n${await profileEngineStep(engine, s, traceArg >= 0 ? args[traceArg + 1] : undefined)}\n`);
    }
    if (which === 'all') {
      console.log('\nprocedural data generation vs the training step it feeds (2_4_16):');
      for (const l of await dataVsStep(engine)) console.log('  ' + l);
    }
    console.log('\nshape  ms/step   tokens/s  GFLOP/s  disp/st  subm/st  alloc B/st   TF.js ms (ours faster: median over rounds, range)   torch ms (ours faster)');
    for (const r of rows) console.log(r);
  } finally {
    engine.destroy();
    if (peers) {
      const { releaseTfjs } = await import('./peers/tfjs_gpt.ts').catch(() => ({ releaseTfjs: async () => undefined }));
      await releaseTfjs();
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
