/**
 * Stacked models (src/model/stacked.ts): the needle step of G models in one set of dispatches against
 * one model's step, in one process and one run. Shape: the needle protocol's stage 2 (2_4_16, vocab
 * 256, context 63, batch 1000 per model, untied head, one loss position per row), each model with its
 * own batch; the step is upload, forward, backward and AdamW with per-model clipping (`groups`), two
 * steps in flight as in step.bench.ts. The single model runs the engine's own path twice: its
 * default upload (buckets 'auto') and one bucket (the cut, unsplit body the stacked step also runs).
 *
 *   node --import tsx benchmarks/stacked.bench.ts [--models 1,2,4] [--steps N] [--profile G]
 *
 * Defaults: software adapter --models 1,2,4 --steps 4; GPU --models 1,4,8,16,32 --steps 40, and
 * there the largest stack once more with the workgroup-per-row LayerNorm ('wg', the plan's choice for wide rows).
 * Arms per minute = G / (ms per stacked step × 10,000 steps), training steps only: the protocol's
 * evaluations (4,000 sequences every 50 steps) are not in it. Prints a table, then one JSON line
 * {"bench": "stacked", "rows": [{"models", "ms_per_step", "ms_per_model_step", "arms_per_minute", "speedup"}]}
 * (speedup: model-steps per second against the single model's default path).
 */
import { backward } from '../engine/autograd.ts';
import { Engine } from '../engine/engine.ts';
import { AdamW } from '../engine/optim.ts';
import type { Tensor } from '../engine/tensor.ts';
import { gpuWait } from '../engine/wait.ts';
import { makeConfig } from '../src/model/config.ts';
import { GPT, type HostBatch, type UploadOptions } from '../src/model/gpt.ts';
import { StackedGPT } from '../src/model/stacked.ts';
import type { LayerNormVariant } from '../engine/ops/layernorm.ts';
import { wallTime } from './timing.ts';
import { option } from './options.ts';

const PROTOCOL_STEPS = 10_000;
const B = 1000;
const T = 63;
const V = 256;
const cfg = makeConfig({ size: '2_4_16', vocabSize: V, nPositions: T, tied: false, dropout: 0 });


/** Model g's batch: random tokens, the needle task's loss position 2n (n in 1..30) per row. */
function needleBatch(g: number): HostBatch {
  let x = 12345 + 7919 * g;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8;
  const ids = Int32Array.from({ length: B * T }, () => rnd() % V);
  const targets = Int32Array.from({ length: B * T }, () => rnd() % V);
  const lossMask = new Float32Array(B * T);
  for (let r = 0; r < B; r++) lossMask[r * T + 2 * (1 + (rnd() % 30))] = 1;
  return { ids, targets, lossMask, batch: B, seqLen: T };
}

interface Stepper {
  step(): Tensor;
  destroy(): void;
}

/** One training step of `model` with `opt` on the batch(es) `upload` puts on the device. */
function stepper<D>(e: Engine, o: { params: { zeroGrad(): void }; upload(): D; loss(d: D): Tensor; opt: AdamW; destroy(): void }): Stepper {
  return {
    step: () =>
      e.tidy(() => {
        const d = o.upload();
        o.params.zeroGrad();
        e.startGrad();
        const loss = o.loss(d);
        backward(loss);
        o.opt.step(5e-4);
        return loss;
      }),
    destroy: () => {
      o.opt.destroy();
      o.destroy();
    },
  };
}

function singleStepper(e: Engine, upload: UploadOptions): Stepper {
  const model = GPT.create(e, cfg, { seed: 0 });
  const batch = needleBatch(0);
  return stepper(e, {
    params: model.params,
    upload: () => model.uploadBatch(batch, upload),
    loss: (d) => model.loss(d, { train: true }).loss,
    opt: new AdamW(model.params, { weightDecay: 0.001, maxGradNorm: 1 }),
    destroy: () => model.destroy(),
  });
}

function stackedStepper(e: Engine, G: number, layerNorm?: LayerNormVariant): Stepper {
  const model = StackedGPT.create(e, cfg, { seeds: Array.from({ length: G }, (_, g) => g), ...(layerNorm ? { layerNorm } : {}) });
  const batches = Array.from({ length: G }, (_, g) => needleBatch(g));
  return stepper(e, {
    params: model.params,
    upload: () => model.uploadBatches(batches),
    loss: (d) => model.loss(d).loss,
    opt: new AdamW(model.params, { weightDecay: 0.001, maxGradNorm: 1, groups: G }),
    destroy: () => model.destroy(),
  });
}

/** ms per step: `steps` steps two in flight after two untimed ones; and dispatches per step. */
async function time(e: Engine, st: Stepper, steps: number): Promise<{ ms: number; dispatches: number; loss: number }> {
  let last: Tensor | null = null;
  const run = async (k: number) => {
    for (let i = 0; i < k; i++) {
      last?.dispose();
      last = st.step();
      e.flush();
    }
    await gpuWait(e.gpu.queue.onSubmittedWorkDone());
  };
  await run(2);
  const d0 = e.counters.dispatches;
  const calls = Math.ceil(steps / 2);
  let done = 0;
  const { total } = await wallTime(
    async () => {
      const k = Math.min(2, steps - done);
      done += k;
      await run(k);
    },
    { warmup: 1, minSamples: calls - 1, maxSamples: calls - 1 },
  );
  // wallTime's warm-up call ran 2 steps untimed as well: count the timed ones.
  const timed = done - 2;
  const dispatches = (e.counters.dispatches - d0) / done;
  const loss = (await (last as Tensor | null)?.read())?.[0] ?? NaN;
  (last as Tensor | null)?.dispose();
  st.destroy();
  return { ms: total / timed, dispatches, loss };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const e = await Engine.create();
  const sw = e.device.info.software;
  const models = (option(args, '--models') ?? (sw ? '1,2,4' : '1,4,8,16,32')).split(',').map(Number);
  const steps = Math.max(4, Number(option(args, '--steps') ?? (sw ? 4 : 40)));
  for (const G of models) if (!(Number.isInteger(G) && G >= 1)) throw new Error(`--models: ${G} is not a positive integer`);
  console.log(`adapter: ${e.device.describe()}`);
  console.log(`needle step (2_4_16, batch ${B} × ${T} per model), ${steps} timed steps each\n`);
  try {
    const base = await time(e, singleStepper(e, {}), steps);
    const one = await time(e, singleStepper(e, { buckets: 1 }), steps);
    const perMin = (ms: number, G: number) => (G * 60_000) / (ms * PROTOCOL_STEPS);
    const lines = [
      '| models | ms/step | ms per model-step | dispatches/step | arms/min (steps only) | × one model |',
      '| --- | --- | --- | --- | --- | --- |',
      `| 1 (GPT, buckets auto) | ${base.ms.toFixed(1)} | ${base.ms.toFixed(1)} | ${base.dispatches.toFixed(0)} | ${perMin(base.ms, 1).toFixed(3)} | 1.00 |`,
      `| 1 (GPT, one bucket) | ${one.ms.toFixed(1)} | ${one.ms.toFixed(1)} | ${one.dispatches.toFixed(0)} | ${perMin(one.ms, 1).toFixed(3)} | ${(base.ms / one.ms).toFixed(2)} |`,
    ];
    const rows: { models: number; ms_per_step: number; ms_per_model_step: number; arms_per_minute: number; speedup: number }[] = [];
    for (const G of models) {
      const r = await time(e, stackedStepper(e, G), steps);
      const speedup = (base.ms * G) / r.ms;
      rows.push({ models: G, ms_per_step: +r.ms.toFixed(2), ms_per_model_step: +(r.ms / G).toFixed(2), arms_per_minute: +perMin(r.ms, G).toFixed(3), speedup: +speedup.toFixed(2) });
      lines.push(`| ${G} (stacked) | ${r.ms.toFixed(1)} | ${(r.ms / G).toFixed(1)} | ${r.dispatches.toFixed(0)} | ${perMin(r.ms, G).toFixed(3)} | ${speedup.toFixed(2)} |`);
      console.log(`stacked ${G}: ${r.ms.toFixed(1)} ms/step, loss ${r.loss.toFixed(4)} (sum of ${G} means)`);
    }
    // On a GPU the plan gives d = 16 rows one invocation each ('thread', ROW_THREAD_MAX_WIDTH in
    // engine/plan.ts; unmeasured): the largest stack again with a 128-lane workgroup per row ('wg'),
    // the plan's choice for wider rows, to check that rule.
    if (!sw) {
      const G = models[models.length - 1]!;
      const r = await time(e, stackedStepper(e, G, 'wg'), steps);
      lines.push(`| ${G} (stacked, LayerNorm 'wg') | ${r.ms.toFixed(1)} | ${(r.ms / G).toFixed(1)} | ${r.dispatches.toFixed(0)} | ${perMin(r.ms, G).toFixed(3)} | ${((base.ms * G) / r.ms).toFixed(2)} |`);
    }
    const profileG = option(args, '--profile');
    if (profileG !== undefined && e.profiler.supported) {
      const st = stackedStepper(e, Number(profileG));
      st.step().dispose();
      await e.sync();
      e.profiler.start();
      st.step().dispose();
      const p = await e.profiler.stop();
      st.destroy();
      lines.push('', `profile of one stacked step, ${profileG} models:`, p.table());
    }
    console.log(`\n${lines.join('\n')}\n`);
    console.log(
      JSON.stringify({
        bench: 'stacked',
        single_ms_per_step: +base.ms.toFixed(2),
        single_one_bucket_ms_per_step: +one.ms.toFixed(2),
        rows,
      }),
    );
  } finally {
    e.destroy();
  }
}

await main();
