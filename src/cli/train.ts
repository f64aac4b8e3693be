/**
 * `kindling train --task sort [--config file.yaml] [--key value ...]`: stage-1 procedural pretraining
 * (spec §4) with the reference's config keys. Writes checkpoints, metrics.jsonl and the best model to
 * the run directory.
 *
 * Signals: the first SIGINT or SIGTERM lets the step in flight finish, writes a `step-N` checkpoint,
 * says where, and exits 130 (SIGINT) or 143 (SIGTERM); `--resume true` continues from it. A second
 * signal exits at once with the same code, writing nothing more.
 */
import { Engine } from '../../engine/engine.ts';
import { ConfigError, describeConfig, loadConfig, PROCEDURAL_SCHEMA, schemaCommand, type ProceduralConfig } from '../train/config.ts';
import { closingAccuracy, openProceduralRun, runProcedural } from '../train/procedural.ts';
import type { StopRequest } from '../train/trainer.ts';
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
  notes:
    'Lists take several values (--key a b), a comma list (a,b) or a flow list ([a, b]); null sets a\nnullable key to null.\n' +
    'SIGINT or SIGTERM: the step in flight finishes, a step-N checkpoint is written and named, exit 130\n' +
    '(SIGINT) or 143 (SIGTERM); continue with --resume true. A second signal exits at once.\n' +
    'A non-finite loss or gradient norm stops the run with exit 1 (nonfinite: skip skips such steps).',
});

/** Exit codes of a run ended by a signal (128 + the signal number, as shells report). */
export const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Route SIGINT/SIGTERM to `stop` while `fn` runs: the first asks the trainer to stop after the step in
 * flight, a second exits at once.
 */
async function withStopSignals<T>(stop: StopRequest, fn: () => Promise<T>): Promise<T> {
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stop.signal) {
      process.stderr.write(`\nkindling train: second signal (${sig}): exiting at once, no checkpoint written for the steps since the last one\n`);
      process.exit(SIGNAL_EXIT[stop.signal] ?? 1);
    }
    stop.signal = sig;
    process.stderr.write(`\nkindling train: ${sig}: finishing the step in flight and writing a checkpoint (SIGINT again exits at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

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
  // A RunDirError (busy or refused directory) is reported by main.ts with its own exit status.
  const opened = openProceduralRun(loaded.values, log);
  try {
    if (opened.complete) {
      console.log(`done: the run in ${opened.runDir} is already complete (${opened.resumeFrom!.name} reached max_steps ${opened.resumeFrom!.step}); nothing to train`);
      return 0;
    }
    const engine = await Engine.create();
    try {
      console.log(`device: ${engine.device.describe()}`);
      const stop: StopRequest = { signal: null };
      // The size check at the start of the run throws a ConfigError: main.ts reports it with exit 2.
      const run = await withStopSignals(stop, () => runProcedural(engine, loaded.values, { log, opened, stop }));
      const r = run.result;
      if (r.interrupted) {
        console.error(
          `kindling train: interrupted by ${r.interrupted} at step ${r.steps}: checkpoint ${r.lastCheckpoint ?? '(none: no run directory)'}; ` +
            `continue with the same options and --resume true`,
        );
        run.trainer.destroy();
        run.model.destroy();
        return SIGNAL_EXIT[r.interrupted] ?? 1;
      }
      const last = r.evals[r.evals.length - 1];
      const loss = r.losses[r.losses.length - 1];
      // Dyck: the accuracy on closing-bracket targets, which the prefix determines (spec §14), is what
      // says whether the language was learned; the experiment runner's stage-1 gate reads the same.
      const closing = await closingAccuracy(run.trainer, loaded.values, run.validation);
      console.log(
        `done: ${r.steps} steps${r.stoppedEarly ? ' (early stop)' : ''}${r.skippedSteps ? ` (${r.skippedSteps} non-finite steps skipped)` : ''}` +
          (loss ? `; final train loss ${loss.loss.toFixed(4)}` : '') +
          (last ? `; validation loss ${last.loss.toFixed(4)}, accuracy ${(100 * last.accuracy).toFixed(2)}%` : '') +
          (closing !== null ? `; closing-bracket accuracy ${(100 * closing).toFixed(2)}% (final weights; near 100% once the language is learned)` : '') +
          `\nrun directory: ${run.runDir}`,
      );
      run.trainer.destroy();
      run.model.destroy();
      return 0;
    } finally {
      engine.destroy();
    }
  } finally {
    opened.release();
  }
}

