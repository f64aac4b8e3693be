// TensorFlow.js (WebGPU backend, on Dawn through the `webgpu` npm package) peer of one GPT-2 training
// step, for the end-to-end benchmark. Same model and step as benchmarks/peers/torch_gpt_step.py:
//
//   GPT-2 with Hugging Face semantics: pre-LN blocks, learned position embeddings, causal multi-head
//   attention with q|k|v from one [d,3d] Conv1D-style matrix (y = x·W + b), MLP 4d with GELU-tanh,
//   LayerNorm eps 1e-5, dropout 0, logits = LN_f(h)·Wlmᵀ (Wlm = wte when tied). HF init.
//   Step: forward, masked-mean cross-entropy, backward (tf.variableGrads), global grad-norm clip at 1.0
//   (torch's clip_grad_norm_ rule: scale by min(1, 1/(‖g‖+1e-6))), AdamW = tf.train.adam (β 0.9/0.999,
//   eps 1e-8) + decoupled weight decay 0.1 on every parameter, applied by hand before the Adam update
//   (torch.optim.AdamW's order). lr 5e-4 by default. The batch is fixed random data.
//
//   node --import tsx benchmarks/peers/tfjs_gpt.ts [a|b|tiny] [steps]
//
// `createTfjsGptStep(shape)` is exported for the benchmark runner and the tests; `releaseTfjs()` tears the
// TF.js backend and its Dawn device down (call it once at the very end so the process can exit).

import { pathToFileURL } from 'node:url';
import type * as TFNS from '@tensorflow/tfjs';

type TF = typeof TFNS;
type Tensor = TFNS.Tensor;
type Variable = TFNS.Variable;

export interface GptShape {
  vocab: number;
  context: number;
  d: number;
  heads: number;
  layers: number;
  batch: number;
  /** Output head tied to the token embedding (logits = LN_f(h)·wteᵀ). */
  tied: boolean;
}

export interface GptStepOptions {
  /** Learning rate (default 5e-4, the procedural trainer's). */
  lr?: number;
  /** Seed for the init and the data (default 0). */
  seed?: number;
}

export interface GptStep {
  /** One training step; resolves to the loss of the forward pass of this step. */
  step(): Promise<number>;
  /** Frees the model's variables, optimizer state and data (the backend stays up). */
  dispose(): void;
  /** Number of trainable parameters. */
  readonly params: number;
  /** Current weights and the fixed batch (for cross-checking against the torch peer). */
  exportState(): Promise<GptState>;
}

/** The benchmark shapes. (b) is the paper's needle model 2_4_16 with its untied head. */
export const GPT_SHAPES: Record<'a' | 'b' | 'g' | 'tiny', GptShape> = {
  a: { vocab: 512, context: 128, d: 128, heads: 4, layers: 2, batch: 16, tied: true },
  b: { vocab: 256, context: 63, d: 16, heads: 4, layers: 2, batch: 1000, tied: false },
  // GPT-2 small at context 1024, batch 4 (for real GPUs).
  g: { vocab: 50257, context: 1024, d: 768, heads: 12, layers: 12, batch: 4, tied: true },
  tiny: { vocab: 11, context: 5, d: 8, heads: 2, layers: 1, batch: 2, tied: true },
};

// ------------------------------------------------------------------------------------------------
// Loading TF.js on Dawn

// Dawn's GPU object must stay referenced for the whole run: if its instance is garbage-collected the
// process crashes. Module scope keeps it alive.
let dawnGpu: unknown = null;
let loading: Promise<TF> | null = null;

/** Loads TF.js with the WebGPU backend on Dawn's adapter (once per process). Throws with the reason. */
export function loadTfjs(): Promise<TF> {
  return (loading ??= (async () => {
    const step = (what: string, e: unknown): Error =>
      new Error(`TF.js WebGPU peer unavailable: ${what}: ${(e as Error)?.message ?? String(e)}`);
    let webgpu: typeof import('webgpu');
    try {
      webgpu = await import('webgpu');
    } catch (e) {
      throw step("cannot load Dawn's Node bindings (npm package `webgpu`)", e);
    }
    // Dawn exports the WebGPU globals (GPUBufferUsage, GPUMapMode, ...); TF.js uses them by name.
    for (const [k, v] of Object.entries(webgpu.globals as Record<string, unknown>)) {
      if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    }
    dawnGpu ??= webgpu.create([]);
    // Node 20 has no navigator; Node ≥ 21 has one whose `gpu` is absent. TF.js's WebGPU backend only
    // registers itself when navigator.gpu exists at import time, so set it before importing.
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav) {
      try {
        Object.defineProperty(nav, 'gpu', { value: dawnGpu, configurable: true });
      } catch {
        Object.defineProperty(globalThis, 'navigator', { value: { gpu: dawnGpu }, configurable: true, writable: true });
      }
    } else {
      (globalThis as { navigator?: object }).navigator = { gpu: dawnGpu };
    }
    let tf: TF;
    try {
      const mod = (await import('@tensorflow/tfjs')) as TF & { default?: TF };
      tf = (mod.default ?? mod) as TF;
      await import('@tensorflow/tfjs-backend-webgpu');
    } catch (e) {
      throw step('cannot import @tensorflow/tfjs / @tensorflow/tfjs-backend-webgpu (devDependencies; run npm install)', e);
    }
    let ok = false;
    try {
      ok = await tf.setBackend('webgpu');
    } catch (e) {
      throw step('the webgpu backend failed to initialise on Dawn', e);
    }
    if (!ok || tf.getBackend() !== 'webgpu') {
      throw new Error(
        `TF.js WebGPU peer unavailable: tf.setBackend('webgpu') failed (backend now ${tf.getBackend()}); ` +
          `Dawn found no adapter? Run \`npm run setup\`.`,
      );
    }
    // TF.js does not check WebGPU errors; collect them so that step() fails instead of returning
    // numbers computed by a pipeline that never ran.
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      if (gpuErrors.length < 8) gpuErrors.push(ev.error.message);
    };
    return tf;
  })());
}

const gpuErrors: string[] = [];

function checkGpuErrors(): void {
  if (gpuErrors.length) {
    const msg = gpuErrors.splice(0).join('\n---\n');
    throw new Error(`TF.js WebGPU backend reported WebGPU errors:\n${msg}`);
  }
}

/** Adapter TF.js runs on, e.g. "mesa software". */
export async function tfjsAdapter(): Promise<string> {
  const tf = await loadTfjs();
  const info = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo;
  return `${info?.vendor ?? '?'} ${info?.architecture ?? '?'}`.trim();
}

/**
 * Disposes every tensor and the backend instance and destroys its Dawn device, so the process can exit.
 * The backend's factory stays registered: a later loadTfjs() creates a fresh backend and device.
 * (Dawn's GPU object stays referenced from navigator.gpu.)
 */
export async function releaseTfjs(): Promise<void> {
  if (!loading) return;
  const tf = await loading.catch(() => null);
  loading = null;
  if (!tf) return;
  const backend = tf.findBackend('webgpu') as unknown as { device?: { destroy(): void } } | null;
  tf.disposeVariables();
  tf.engine().reset(); // disposes all tensors and the backend instances
  backend?.device?.destroy();
  gpuErrors.length = 0;
}

// ------------------------------------------------------------------------------------------------
// Model

/** mulberry32: a small deterministic PRNG for the data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Block {
  ln1w: Variable; ln1b: Variable;
  attnW: Variable; attnB: Variable;
  projW: Variable; projB: Variable;
  ln2w: Variable; ln2b: Variable;
  fcW: Variable; fcB: Variable;
  mprojW: Variable; mprojB: Variable;
}

let instanceCounter = 0;

/** Weights and data of a step, in the torch peer's names and layouts (row-major). */
export interface GptState {
  shape: GptShape;
  lr: number;
  weights: Record<string, { shape: number[]; data: number[] }>;
  ids: number[];
  targets: number[];
  mask: number[];
}

/**
 * Builds the model, the optimizer and a fixed random batch on the TF.js WebGPU backend, and returns a
 * closure that runs one full training step.
 */
export async function createTfjsGptStep(shape: GptShape, opts: GptStepOptions = {}): Promise<GptStep> {
  const tf = await loadTfjs();
  const { vocab: V, context: T, d, heads: H, layers: L, batch: B, tied } = shape;
  if (d % H !== 0) throw new Error(`d=${d} is not a multiple of heads=${H}`);
  const hd = d / H;
  const N = B * T;
  const lr = opts.lr ?? 5e-4;
  const wd = 0.1;
  const seed = opts.seed ?? 0;
  let seedCounter = seed * 1000 + 1;

  const vars: Variable[] = [];
  const names: string[] = [];
  const uid = `gpt${(instanceCounter++).toString()}`; // variable names must be unique per process
  const param = (init: Tensor, name: string): Variable => {
    const v = tf.variable(init, true, `${uid}/${name}`);
    init.dispose();
    vars.push(v);
    names.push(name);
    return v;
  };
  const normal = (s: number[], std: number, name: string) => param(tf.randomNormal(s, 0, std, 'float32', seedCounter++), name);
  const ones = (s: number[], name: string) => param(tf.ones(s), name);
  const zeros = (s: number[], name: string) => param(tf.zeros(s), name);

  // Parameter names are the torch peer's (benchmarks/peers/torch_gpt_step.py), so that exportState()
  // can be loaded there for a cross-check.
  const std = 0.02;
  const projStd = 0.02 / Math.sqrt(2 * L);
  const wte = normal([V, d], std, 'wte');
  const wpe = normal([T, d], std, 'wpe');
  const blocks: Block[] = [];
  for (let i = 0; i < L; i++) {
    const p = `blocks.${i}.`;
    blocks.push({
      ln1w: ones([d], `${p}ln1_w`), ln1b: zeros([d], `${p}ln1_b`),
      attnW: normal([d, 3 * d], std, `${p}attn_w`), attnB: zeros([3 * d], `${p}attn_b`),
      projW: normal([d, d], projStd, `${p}proj_w`), projB: zeros([d], `${p}proj_b`),
      ln2w: ones([d], `${p}ln2_w`), ln2b: zeros([d], `${p}ln2_b`),
      fcW: normal([d, 4 * d], std, `${p}fc_w`), fcB: zeros([4 * d], `${p}fc_b`),
      mprojW: normal([4 * d, d], projStd, `${p}mproj_w`), mprojB: zeros([d], `${p}mproj_b`),
    });
  }
  const lnfW = ones([d], 'lnf_w');
  const lnfB = zeros([d], 'lnf_b');
  const lmHead = tied ? wte : normal([V, d], std, 'lm_head');
  const params = vars.reduce((s, v) => s + v.size, 0);

  // Fixed data: one random sequence per row, inputs = seq[:-1], targets = seq[1:]; the loss mask drops
  // position 0 of every row (the mean is over masked tokens, as in the torch peer).
  const r = rng(0x9e3779b9 ^ seed);
  const ids = new Int32Array(N);
  const targets = new Int32Array(N);
  const mask = new Float32Array(N);
  for (let b = 0; b < B; b++) {
    const seq = Array.from({ length: T + 1 }, () => Math.floor(r() * V));
    for (let t = 0; t < T; t++) {
      ids[b * T + t] = seq[t]!;
      targets[b * T + t] = seq[t + 1]!;
      mask[b * T + t] = T > 1 && t === 0 ? 0 : 1;
    }
  }
  let maskSum = 0;
  for (const m of mask) maskSum += m;
  const idsT = tf.tensor1d(ids, 'int32');
  const posT = tf.range(0, T, 1, 'int32');
  // Per-token loss weights mask/Σmask as a one-hot [N,V] matrix: loss = −Σ W ⊙ log_softmax(logits).
  const lossW = tf.tidy(() =>
    tf.oneHot(tf.tensor1d(targets, 'int32'), V).toFloat().mul(tf.tensor2d(mask, [N, 1]).div(maskSum)),
  );
  // Causal mask added to the scores: 0 on and below the diagonal, −1e9 above (exp underflows to 0
  // exactly as with −inf, without inf−inf hazards in the backward pass).
  const causal = tf.tidy(() => tf.linalg.bandPart(tf.ones([T, T]), -1, 0).sub(1).mul(1e9).reshape([1, T, T]));
  const consts: Tensor[] = [idsT, posT, lossW, causal];

  const layerNorm = (x: Tensor, g: Tensor, b: Tensor): Tensor => {
    const mean = x.mean(-1, true);
    const xc = x.sub(mean);
    const variance = xc.square().mean(-1, true);
    return xc.mul(variance.add(1e-5).rsqrt()).mul(g).add(b);
  };
  const geluTanh = (x: Tensor): Tensor => {
    const c = Math.sqrt(2 / Math.PI);
    const inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(c);
    return x.mul(0.5).mul(inner.tanh().add(1));
  };
  const scale = 1 / Math.sqrt(hd);

  const lossFn = (): TFNS.Scalar => {
    let h = tf.gather(wte, idsT).reshape([B, T, d]).add(tf.gather(wpe, posT)) as Tensor; // [B,T,d]
    for (const blk of blocks) {
      const a = layerNorm(h, blk.ln1w, blk.ln1b).reshape([N, d]);
      const qkv = a.matMul(blk.attnW).add(blk.attnB).reshape([B, T, 3, H, hd]).transpose([2, 0, 3, 1, 4]); // [3,B,H,T,hd]
      const [q, k, v] = tf.unstack(qkv, 0).map((x) => x.reshape([B * H, T, hd]));
      const s = tf.matMul(q!, k!, false, true).mul(scale).add(causal); // [BH,T,T]
      const att = tf.softmax(s);
      const y = tf.matMul(att, v!).reshape([B, H, T, hd]).transpose([0, 2, 1, 3]).reshape([N, d]);
      h = h.add(y.matMul(blk.projW).add(blk.projB).reshape([B, T, d]));
      const m = layerNorm(h, blk.ln2w, blk.ln2b).reshape([N, d]);
      const f = geluTanh(m.matMul(blk.fcW).add(blk.fcB));
      h = h.add(f.matMul(blk.mprojW).add(blk.mprojB).reshape([B, T, d]));
    }
    const hf = layerNorm(h, lnfW, lnfB).reshape([N, d]);
    const logits = tf.matMul(hf, lmHead, false, true); // [N,V]
    return tf.logSoftmax(logits).mul(lossW).sum().neg() as TFNS.Scalar;
  };

  const optimizer = tf.train.adam(lr, 0.9, 0.999, 1e-8);

  const stepSync = (): TFNS.Scalar =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(lossFn, vars);
      // Global grad-norm clipping at 1.0 (torch.nn.utils.clip_grad_norm_: coef = 1/(‖g‖+1e-6), ≤ 1).
      const gradNames = Object.keys(grads);
      // (A chain of adds, not tf.addN: TF.js's AddN shader binds every input as a storage buffer and
      // exceeds the default limit of 8 per stage that the backend's device gets.)
      const sq = gradNames.map((n) => grads[n]!.square().sum()).reduce((acc, x) => acc.add(x));
      const coef = tf.minimum(tf.scalar(1), tf.scalar(1).div(sq.sqrt().add(1e-6)));
      const clipped: TFNS.NamedTensorMap = {};
      for (const n of gradNames) clipped[n] = grads[n]!.mul(coef);
      // Decoupled weight decay on every parameter, then the Adam update (torch AdamW's order).
      for (const v of vars) v.assign(v.mul(1 - lr * wd));
      optimizer.applyGradients(clipped as unknown as Parameters<typeof optimizer.applyGradients>[0]); // (AdamOptimizer mistypes its argument)
      return value;
    });

  let disposed = false;
  return {
    params,
    async step() {
      if (disposed) throw new Error('step() after dispose()');
      const loss = stepSync();
      const [x] = await loss.data();
      loss.dispose();
      checkGpuErrors();
      return x!;
    },
    async exportState() {
      const weights: GptState['weights'] = {};
      for (let i = 0; i < vars.length; i++) {
        weights[names[i]!] = { shape: vars[i]!.shape.slice(), data: Array.from(await vars[i]!.data()) };
      }
      return { shape: { ...shape }, lr, weights, ids: Array.from(ids), targets: Array.from(targets), mask: Array.from(mask) };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      optimizer.dispose();
      for (const v of vars) v.dispose();
      for (const c of consts) c.dispose();
    },
  };
}

// ------------------------------------------------------------------------------------------------
// CLI: warm up 2 steps, time N steps, print ms/step.

export interface TfjsGptBenchResult {
  shape: string;
  /** Wall time per timed step. */
  msPerStep: number;
  /** CPU time of this process per timed step (lavapipe's threads included): less sensitive to other
   *  processes on a shared machine than the wall time. */
  cpuMsPerStep: number;
  losses: number[];
  params: number;
  adapter: string;
}

export async function runTfjsGptBench(
  name: 'a' | 'b' | 'g' | 'tiny',
  steps = 5,
  warmup = 2,
  log: (s: string) => void = () => {},
): Promise<TfjsGptBenchResult> {
  const shape = GPT_SHAPES[name];
  const t0 = performance.now();
  const g = await createTfjsGptStep(shape);
  const adapter = await tfjsAdapter();
  log(`tfjs webgpu (${adapter}), shape ${name} ${JSON.stringify(shape)}, ${g.params} params, setup ${(performance.now() - t0).toFixed(0)} ms`);
  const losses: number[] = [];
  try {
    for (let i = 0; i < warmup; i++) {
      const s = performance.now();
      losses.push(await g.step());
      log(`  warmup ${i + 1}/${warmup}: loss ${losses.at(-1)!.toFixed(4)}, ${(performance.now() - s).toFixed(0)} ms`);
    }
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < steps; i++) {
      const s = performance.now();
      losses.push(await g.step());
      log(`  step ${i + 1}/${steps}: loss ${losses.at(-1)!.toFixed(4)}, ${(performance.now() - s).toFixed(0)} ms`);
    }
    const msPerStep = (performance.now() - start) / Math.max(steps, 1);
    const cpu = process.cpuUsage(cpu0);
    const cpuMsPerStep = (cpu.user + cpu.system) / 1e3 / Math.max(steps, 1);
    return { shape: name, msPerStep, cpuMsPerStep, losses, params: g.params, adapter };
  } finally {
    g.dispose();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const name = (process.argv[2] ?? 'a') as 'a' | 'b' | 'g' | 'tiny';
  if (!(name in GPT_SHAPES)) throw new Error(`unknown shape ${name}; expected a, b, g or tiny`);
  const steps = Number(process.argv[3] ?? 5);
  const r = await runTfjsGptBench(name, steps, 2, (s) => console.log(s));
  console.log(
    `tfjs-webgpu gpt step, shape ${name}: ${r.msPerStep.toFixed(1)} ms/step wall, ${r.cpuMsPerStep.toFixed(1)} ms/step CPU ` +
      `(mean of ${steps} after 2 warm-up)`,
  );
  console.log(
    JSON.stringify({
      shape: name,
      ms_per_step: r.msPerStep,
      cpu_ms_per_step: r.cpuMsPerStep,
      losses: r.losses,
      params: r.params,
      adapter: r.adapter,
    }),
  );
  await releaseTfjs();
}
