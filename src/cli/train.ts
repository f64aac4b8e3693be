/**
 * `kindling train --task sort [--config file.yaml] [--key value ...]`: stage-1 procedural pretraining
 * (spec §4) with the reference's config keys. Writes checkpoints, metrics.jsonl and the best model to
 * the run directory.
 */
import { Engine } from '../../engine/engine.ts';
import { ConfigError, describeConfig, loadConfig, PROCEDURAL_SCHEMA, schemaCommand, type ProceduralConfig } from '../train/config.ts';
import { runProcedural } from '../train/procedural.ts';
import { formatHelp, wantsHelp } from '../util/args.ts';
import { DEVICE_ENV } from './env.ts';

/** The procedural schema as a command: its keys are the options (spelled as in the YAML files). */
export const TRAIN_SPEC = schemaCommand(PROCEDURAL_SCHEMA, {
  command: 'kindling train',
  summary:
    'Stage-1 procedural pretraining (spec §4) with the reference config keys, as options or in a YAML file ' +
    '(--config; the command line wins over the file, the file over the defaults). Writes checkpoints, ' +
    'metrics.jsonl and the best model to the run directory. Keys and defaults: docs/training.md.',
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
  const engine = await Engine.create();
  try {
    console.log(`device: ${engine.device.describe()}`);
    let run;
    try {
      run = await runProcedural(engine, loaded.values);
    } catch (e) {
      // Checks at the start of the run that depend on the machine (the size check) are configuration errors too.
      if (!(e instanceof ConfigError)) throw e;
      console.error(`kindling train: ${e.message}`);
      return 2;
    }
    const r = run.result;
    const last = r.evals[r.evals.length - 1];
    console.log(
      `done: ${r.steps} steps${r.stoppedEarly ? ' (early stop)' : ''}; final train loss ${r.losses[r.losses.length - 1]?.loss.toFixed(4)}` +
        (last ? `; validation loss ${last.loss.toFixed(4)}, accuracy ${(100 * last.accuracy).toFixed(2)}%` : '') +
        `\nrun directory: ${run.runDir}`,
    );
    run.trainer.destroy();
    run.model.destroy();
    return 0;
  } finally {
    engine.destroy();
  }
}
