/**
 * `kindling <command>`: the command-line entry. Each command lives in its own module under src/cli.
 * Returns an exit code (never calls process.exit, so Dawn can shut down cleanly).
 */
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
  train: { summary: 'procedural pretraining (stage 1) with the reference config keys (kindling train --help)', run: runTrainCommand },
  experiment: { summary: 'run an experiment file or preset (quick, paper): arms × sweeps × seeds, then results.json and report.html', run: runExperimentCommand },
  score: { summary: 'mean next-token loss and argmax predictions of a checkpoint on token sequences', run: runScoreCommand },
};

export function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'kindling: a from-scratch WebGPU training engine (procedural pretraining reproduction)',
    '',
    'usage: kindling <command> [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
    '',
    'environment: KINDLING_ADAPTER (adapter name or substring), KINDLING_BACKEND (vulkan, metal, d3d12, ...),',
    '             KINDLING_SOFTWARE=1 (force the CPU adapter)',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return 0;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`kindling: unknown command "${cmd}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await c.run(rest);
  } catch (e) {
    console.error(`kindling ${cmd}: ${(e as Error).message}`);
    if (process.env.KINDLING_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}

// Run directly: `node --import tsx src/cli/main.ts <command>` (what the npm scripts do).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
