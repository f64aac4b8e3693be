/**
 * `kindling <command>`: the command-line entry. Each command lives in its own module under src/cli and
 * declares its arguments as a spec of the one parser (src/util/args.ts), which also writes its --help.
 * Returns an exit code (never calls process.exit, so Dawn can shut down cleanly): 0 done, 1 failed,
 * 2 a usage error (a UsageError from any command: unknown option, bad value, missing argument).
 */
import { closest, formatHelp, UsageError, type CommandSpec } from '../util/args.ts';
import { DEVICE_ENV } from './env.ts';
import { runCorporaCommand } from './corpora.ts';
import { runDataCommand } from './data.ts';
import { runDeviceCommand } from './device.ts';
import { runExperimentCommand } from './experiment.ts';
import { runScoreCommand } from './score.ts';
import { runStartCommand } from './start.ts';
import { runTrainCommand } from './train.ts';

interface Command {
  summary: string;
  run: (argv: string[]) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  start: { summary: 'the main job (what `npm start` runs): adapter, engine self-check and a demo', run: runStartCommand },
  device: { summary: 'print the WebGPU adapter, its features and limits', run: runDeviceCommand },
  data: { summary: 'preview or export procedural pretraining data (kindling data --help)', run: runDataCommand },
  corpora: { summary: 'semantic corpora (C4, CodeParrot, DeepMind-Math): `corpora stats` counts documents, tokens and packed sequences', run: runCorporaCommand },
  train: { summary: 'procedural pretraining (stage 1) with the reference config keys (kindling train --help)', run: runTrainCommand },
  experiment: { summary: 'run an experiment file or preset (quick, paper): arms × sweeps × seeds, then results.json and report.html', run: runExperimentCommand },
  score: { summary: 'mean next-token loss and argmax predictions of a checkpoint on token sequences', run: runScoreCommand },
};

export const MAIN_SPEC: CommandSpec = {
  command: 'kindling',
  summary: 'kindling: a from-scratch WebGPU training engine (procedural pretraining reproduction). Run `kindling <command> --help` for the options of a command.',
  subcommands: Object.fromEntries(Object.entries(COMMANDS).map(([k, c]) => [k, c.summary])),
  options: {},
  env: DEVICE_ENV,
};

export function usage(): string {
  return formatHelp(MAIN_SPEC).trimEnd();
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return 0;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    const near = closest(cmd, Object.keys(COMMANDS));
    console.error(`kindling: unknown command "${cmd}"${near ? ` (did you mean "${near}"?)` : ''}\n\n${usage()}`);
    return 2;
  }
  try {
    return await c.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`kindling ${cmd}: ${e.message}\n(see kindling ${cmd} --help)`);
      return 2;
    }
    console.error(`kindling ${cmd}: ${(e as Error).message}`);
    if (process.env.KINDLING_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}

// Run directly: `node --import tsx src/cli/main.ts <command>` (what the npm scripts do).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
