/**
 * `kindling start` (what `npm start` runs after bootstrapping): prints the adapter, runs the engine
 * self-check, then the `quick` experiment preset (src/experiments/presets/quick.yaml): the needle task
 * with no pretraining, k-Dyck pretraining and its shuffled control, scaled down for CPUs. Prints the
 * results table and where report.html is.
 *
 * Options: --out DIR (default runs/quick), --jobs N, --fresh (start over instead of resuming).
 * A previous run of the same preset in DIR is resumed (finished runs kept); a DIR holding anything
 * else is moved aside to DIR.old-<time> first.
 */
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { Engine } from '../../engine/engine.ts';
import { runComputeCheck } from '../../engine/selfcheck.ts';
import { holdsExperiment, runExperiment } from '../experiments/runner.ts';
import { loadExperiment } from '../experiments/schema.ts';

const USAGE = `usage: kindling start [--out DIR] [--jobs N] [--fresh]

  Prints the adapter, checks the engine on it, then runs the \`quick\` experiment preset
  (src/experiments/presets/quick.yaml; kindling experiment quick): needle-in-a-haystack with no
  pretraining, k-Dyck pretraining and shuffled k-Dyck, two seeds each. Prints the results table;
  results.json and report.html go to DIR (default runs/quick).

  --out DIR   experiment directory (default runs/quick). A previous quick run there is resumed;
              anything else there is moved aside to DIR.old-<time>
  --jobs N    worker processes (default 1)
  --fresh     move a previous run aside and start over`;

export async function runStartCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let out = 'runs/quick';
  let jobs = 1;
  let fresh = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out' && argv[i + 1]) out = argv[++i]!;
    else if (a === '--jobs' && argv[i + 1] && Number.isInteger(Number(argv[i + 1])) && Number(argv[i + 1]) >= 1) jobs = Number(argv[++i]);
    else if (a === '--fresh') fresh = true;
    else {
      console.error(`kindling start: unknown or incomplete option ${a}\n\n${USAGE}`);
      return 2;
    }
  }
  const { experiment, text } = loadExperiment('quick');
  const engine = await Engine.create();
  let selfCheck: boolean;
  try {
    console.log(`kindling on ${engine.device.describe()}`);
    selfCheck = await runComputeCheck(engine.device);
    console.log(`engine self-check: ${selfCheck ? 'ok' : 'FAILED'}`);
    if (!selfCheck) return 1;

    let resume = false;
    if (existsSync(out) && readdirSync(out).length > 0) {
      if (!fresh && holdsExperiment(out, experiment)) {
        resume = true;
        console.log(`resuming the quick experiment in ${out} (finished runs are kept; --fresh starts over)`);
      } else {
        const aside = `${out}.old-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        renameSync(out, aside);
        console.log(`${out} held ${fresh ? 'a previous run' : 'something else'}; moved it to ${aside}`);
      }
    }
    console.log(`running the quick experiment (${experiment.description}) in ${out}\n`);
    const r = await runExperiment({ experiment, text, dir: out, resume, jobs, engine: jobs > 1 ? undefined : engine });
    if (r.table) console.log(`\n${r.table}`);
    console.log(`\n${r.completed}/${r.planned} runs finished${r.html ? `; report: ${r.html} (results.json and results.md beside it)` : ''}`);
    for (const f of r.failed) console.error(`failed: ${f.arm} seed ${f.seed}: ${f.error}`);
    return r.failed.length || r.completed < r.planned ? 1 : 0;
  } finally {
    engine.destroy();
  }
}
