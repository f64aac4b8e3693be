/**
 * `kindling start` (what `npm start` runs after bootstrapping): prints the adapter, runs the engine
 * self-check, then the main job: a short procedural pretraining run (stage 1 of the paper) on the
 * `sort` task with a small GPT-2, reporting the loss curve and the validation accuracy.
 *
 * Options: --task <name> --steps N --size L_H_D --seq-length L --vocab-size V --batch-size B --lr X
 *          --save-dir DIR (default runs/start). Everything else as `kindling train`.
 */
import { Engine } from '../../engine/engine.ts';
import { runComputeCheck } from '../../engine/selfcheck.ts';
import { loadConfig, PROCEDURAL_SCHEMA, type ProceduralConfig } from '../train/config.ts';
import { runProcedural } from '../train/procedural.ts';

const DEFAULTS = [
  '--task', 'sort',
  '--gpt2_size', '2_4_64',
  '--seq_length', '8',
  '--vocab_size', '16',
  '--batch_size', '32',
  '--max_steps', '300',
  '--steps_per_epoch', '300',
  '--epochs', '1',
  '--lr', '3e-3',
  '--lr_schedule', 'cosine',
  '--warmup_steps', '30',
  '--weight_decay', '0.1',
  '--dropout', '0',
  '--save_every_steps', '100',
  '--save_total_limit', '1',
  '--save_dir', 'runs/start',
];

export async function runStartCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(
      'usage: kindling start [--key value ...]\n  Prints the adapter, checks the engine on it, then pretrains a small GPT-2 on a procedural task\n' +
        `  (defaults: ${DEFAULTS.join(' ')}); any \`kindling train\` key overrides them.`,
    );
    return 0;
  }
  const engine = await Engine.create();
  try {
    console.log(`kindling on ${engine.device.describe()}`);
    const ok = await runComputeCheck(engine.device);
    console.log(`engine self-check: ${ok ? 'ok' : 'FAILED'}`);
    if (!ok) return 1;
    const { values } = loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { argv: [...DEFAULTS, ...argv] });
    const t0 = performance.now();
    const run = await runProcedural(engine, values);
    const r = run.result;
    const secs = (performance.now() - t0) / 1000;
    console.log('\nstep   train loss');
    const every = Math.max(1, Math.floor(r.losses.length / 6));
    r.losses.forEach((l, i) => {
      if (i % every === 0 || i === r.losses.length - 1) console.log(`${String(l.step).padStart(4)}   ${l.loss.toFixed(4)}`);
    });
    for (const ev of r.evals) console.log(`validation @ step ${ev.step}: loss ${ev.loss.toFixed(4)}, token accuracy ${(100 * ev.accuracy).toFixed(1)}%`);
    console.log(`\n${r.steps} steps in ${secs.toFixed(1)} s (${((1000 * secs) / r.steps).toFixed(1)} ms/step incl. evaluation); checkpoints and metrics.jsonl in ${run.runDir}`);
    run.trainer.destroy();
    run.model.destroy();
    return 0;
  } finally {
    engine.destroy();
  }
}
