/**
 * `kindling train --task sort [--config file.yaml] [--key value ...]`: stage-1 procedural pretraining
 * (spec §4) with the reference's config keys. Writes checkpoints, metrics.jsonl and the best model to
 * the run directory.
 */
import { Engine } from '../../engine/engine.ts';
import { ConfigError, describeConfig, loadConfig, PROCEDURAL_SCHEMA, schemaHelp, type ProceduralConfig } from '../train/config.ts';
import { runProcedural } from '../train/procedural.ts';

export async function runTrainCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`usage: kindling train --task <task> [--config file.yaml] [--key value ...]\n\n${schemaHelp(PROCEDURAL_SCHEMA)}`);
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
    const run = await runProcedural(engine, loaded.values);
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
