/**
 * `kindling train --task sort [--config file.yaml] [--key value ...]`: stage-1 procedural pretraining
 * (spec §4) with the reference's config keys. Writes checkpoints, metrics.jsonl and the best model to
 * the run directory.
 */
import { Engine } from '../../engine/engine.ts';
import { ConfigError, describeConfig, loadConfig, PROCEDURAL_SCHEMA, schemaCommand, type ProceduralConfig } from '../train/config.ts';
import { openProceduralRun, runProcedural } from '../train/procedural.ts';
import { RunDirError } from '../train/rundir.ts';
import { formatHelp, wantsHelp } from '../util/args.ts';
import { DEVICE_ENV } from './env.ts';

/** The procedural schema as a command: its keys are the options (spelled as in the YAML files). */
export const TRAIN_SPEC = schemaCommand(PROCEDURAL_SCHEMA, {
  command: 'kindling train',
  summary:
    'Stage-1 procedural pretraining (spec §4) with the reference config keys, as options or in a YAML file ' +
    '(--config; the command line wins over the file, the file over the defaults). Writes checkpoints, ' +
    'metrics.jsonl and the best model to the run directory (save_dir/run name), which takes one run: a run directory ' +
    'in use by another process is refused (exit 1), one that holds a run needs --resume or --overwrite (exit 2), and ' +
    'a resume whose config differs from the checkpoint\'s is refused naming the keys (exit 2). Keys and defaults: docs/training.md.',
  env: DEVICE_ENV,
  notes: 'Lists take several values (--key a b), a comma list (a,b) or a flow list ([a, b]); null sets a\nnullable key to null.',
});

export async function runTrainCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(formatHelp(TRAIN_SPEC));
    return 0;
  }
  let loaded;
  try {
    loaded = loadConfig<ProceduralConfig>(PROCEDURAL_SCHEMA, { argv });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`kindling train: ${e.message}\n(see kindling train --help)`);
      return 2;
    }
    throw e;
  }
  console.log(describeConfig(PROCEDURAL_SCHEMA, loaded));
  const log = (s: string) => console.log(s);
  // The run directory is taken (locked, checked) before the device starts, so a refusal is immediate.
  let opened;
  try {
    opened = openProceduralRun(loaded.values, log);
  } catch (e) {
    if (e instanceof RunDirError) {
      console.error(`kindling train: ${e.message}`);
      return e.exitCode;
    }
    throw e;
  }
  try {
    if (opened.complete) {
      console.log(`done: the run in ${opened.runDir} is already complete (${opened.resumeFrom!.name} reached max_steps ${opened.resumeFrom!.step}); nothing to train`);
      return 0;
    }
    const engine = await Engine.create();
    try {
      console.log(`device: ${engine.device.describe()}`);
      const run = await runProcedural(engine, loaded.values, { log, opened });
      const r = run.result;
      const last = r.evals[r.evals.length - 1];
      const loss = r.losses[r.losses.length - 1];
      console.log(
        `done: ${r.steps} steps${r.stoppedEarly ? ' (early stop)' : ''}` +
          (loss ? `; final train loss ${loss.loss.toFixed(4)}` : '') +
          (last ? `; validation loss ${last.loss.toFixed(4)}, accuracy ${(100 * last.accuracy).toFixed(2)}%` : '') +
          `\nrun directory: ${run.runDir}`,
      );
      run.trainer.destroy();
      run.model.destroy();
      return 0;
    } finally {
      engine.destroy();
    }
  } finally {
    opened.lock.release();
  }
}
