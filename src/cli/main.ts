/**
 * `kindling <command>`: the command-line entry. Each command lives in its own module under src/cli and
 * declares its arguments as a spec of the one parser (src/util/args.ts), which also writes its --help.
 * Returns an exit code (never calls process.exit, so Dawn can shut down cleanly): 0 done, 1 failed,
 * 2 a usage error (a UsageError from any command: unknown option, bad value, missing argument) or a bad
 * configuration (ConfigError, ExperimentError).
 *
 * Any other error of a command prints one line, `kindling <command>: <message>` (the stack too when
 * KINDLING_DEBUG is set), and exits 1. `runCli` (what bin/kindling.js and a direct run call) also
 * catches what escapes the promise chain — an 'error' event nobody listens to, a rejection nobody
 * awaits — and reports it the same way instead of Node's stack dump.
 */
import { closest, formatHelp, UsageError, type CommandSpec } from '../util/args.ts';
import { ExperimentError } from '../experiments/schema.ts';
import { ConfigError } from '../train/config.ts';
import { DEVICE_ENV } from './env.ts';
import { runCompareCommand } from './compare.ts';
import { runHeadsCommand } from './heads.ts';
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
  corpora: { summary: 'semantic corpora (C4, CodeParrot, DeepMind-Math): `corpora stats` counts documents, tokens and packed sequences; `corpora build` writes the embedded default corpora', run: runCorporaCommand },
  train: { summary: 'procedural pretraining (stage 1) with the reference config keys (kindling train --help)', run: runTrainCommand },
  experiment: { summary: 'run an experiment file or preset (quick, paper): arms × sweeps × seeds, then results.json and report.html', run: runExperimentCommand },
  score: { summary: 'mean next-token loss and argmax predictions of a checkpoint on token sequences', run: runScoreCommand },
  compare: { summary: "per-parameter distance of a checkpoint from another one or from a seed's initial weights (norms, |A - B| / |B|)", run: runCompareCommand },
  heads: { summary: 'per attention head of a checkpoint: norms and the identity alignment of its QK and OV circuits (attends to its own kind? copies?)', run: runHeadsCommand },
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
    return reportError(cmd, e);
  }
}

/** The one-line report of an error that ended command `cmd`; returns the exit code (2 usage/config, an error's own `exitCode` of 1 or 2, else 1). */
export function reportError(cmd: string, e: unknown): number {
  const message = e instanceof Error ? e.message || e.name : String(e);
  const prefix = cmd ? `kindling ${cmd}` : 'kindling';
  if (e instanceof UsageError) {
    console.error(`${prefix}: ${message}\n(see ${prefix} --help)`);
    return 2;
  }
  console.error(`${prefix}: ${message}`);
  if (process.env.KINDLING_DEBUG && e instanceof Error && e.stack) console.error(e.stack);
  if (e instanceof ConfigError || e instanceof ExperimentError) return 2;
  // Errors that carry their own status (RunDirError: 1 for a busy run directory, 2 for a refused one).
  const own = (e as { exitCode?: unknown } | null)?.exitCode;
  return own === 1 || own === 2 ? own : 1;
}

/**
 * Runs the CLI as a process: sets process.exitCode from `main`, and turns an uncaught exception or an
 * unhandled rejection (anything that escapes a command's promise) into the same one-line report and
 * exit 1.
 */
export async function runCli(argv: string[]): Promise<void> {
  const name = argv[0] !== undefined && Object.hasOwn(COMMANDS, argv[0]) ? argv[0] : '';
  const fatal = (e: unknown): void => {
    reportError(name, e);
    process.exit(1);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  // stdout redirected to a full disk (`> /dev/full`) fails asynchronously: keep the error, wait for
  // the last write, and report it. EPIPE (the reader went away, `| head`) is not an error.
  let stdoutError: NodeJS.ErrnoException | null = null;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => void (stdoutError ??= e));
  const code = await main(argv);
  if (process.stdout.writableLength > 0 && !stdoutError) await new Promise<void>((resolve) => process.stdout.once('drain', resolve).once('error', resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
  const err = stdoutError as NodeJS.ErrnoException | null;
  // A command that failed has reported its own error already.
  if (err && err.code !== 'EPIPE' && code === 0) {
    reportError(name, new Error(`cannot write stdout: ${err.message}`));
    process.exitCode = 1;
  } else process.exitCode = code;
}

// Run directly: `node --import tsx src/cli/main.ts <command>` (what the npm scripts do).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  await runCli(process.argv.slice(2));
}
