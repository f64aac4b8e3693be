// Every `kindling` command through main(), in-process: `--help` exits 0 with the help generated from
// its spec (src/util/args.ts), and a bad option exits 2 with the option named. No command gets far
// enough to open a device.
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { defaultJobs } from '../../src/cli/start.ts';
import { captureOutput } from '../helpers/console.ts';

const io = captureOutput();

async function run(...argv: string[]): Promise<number> {
  io.out = '';
  io.err = '';
  return main(argv);
}

/** `--help` and `-h`: exit 0, the generated format, and `expected` in the text. */
async function expectHelp(argv: string[], usage: string, expected: string[]): Promise<void> {
  for (const h of ['--help', '-h']) {
    expect(await run(...argv, h), `${argv.join(' ')} ${h}`).toBe(0);
    expect(io.out.split('\n')[0]).toBe(`usage: ${usage}`);
    expect(io.out).toContain('\n  -h, --help');
    for (const e of expected) expect(io.out).toContain(e);
    expect(io.err).toBe('');
  }
}

/** Exit 2, and stderr names the command and contains every `expected` piece. */
async function expectUsageError(argv: string[], expected: string[]): Promise<void> {
  expect(await run(...argv), argv.join(' ')).toBe(2);
  expect(io.err).toMatch(new RegExp(`^kindling ${argv[0]}: `));
  for (const e of expected) expect(io.err).toContain(e);
}

describe('kindling (main)', () => {
  it('help, and an unknown command with a suggestion', async () => {
    for (const argv of [[], ['--help'], ['-h'], ['help']]) {
      expect(await run(...argv)).toBe(0);
      expect(io.out).toContain('usage: kindling <command> [options]');
      expect(io.out).toMatch(/\n {2}experiment +run an experiment file/);
      expect(io.out).toContain('KINDLING_ADAPTER');
    }
    expect(await run('trian')).toBe(2);
    expect(io.err).toContain('kindling: unknown command "trian" (did you mean "train"?)');
  });
});

describe('kindling start', () => {
  it('--help; bad options exit 2 before any device is opened', async () => {
    await expectHelp(['start'], 'kindling start [options]', ['--out DIR', '--jobs N', '(default: runs/quick)', '(default: 2 on a software adapter', '--fresh', 'KINDLING_SOFTWARE']);
    await expectUsageError(['start', '--jbos', '2'], ['unknown option --jbos (did you mean --jobs?)', '(see kindling start --help)']);
    await expectUsageError(['start', '--jobs', '0'], ['--jobs: must be >= 1, got 0']);
    await expectUsageError(['start', '--out'], ['--out needs a value']);
    await expectUsageError(['start', 'extra'], ['unexpected argument "extra"']);
  });
  it('--jobs defaults to 2 on a software adapter with at least 2 CPUs, else 1', () => {
    expect([defaultJobs(true, 2), defaultJobs(true, 16), defaultJobs(true, 1), defaultJobs(false, 16)]).toEqual([2, 2, 1, 1]);
  });
});

describe('kindling device', () => {
  it('--help; a bad option exits 2', async () => {
    await expectHelp(['device'], 'kindling device [options]', ['--json', 'KINDLING_ADAPTER']);
    await expectUsageError(['device', '--jsn'], ['unknown option --jsn (did you mean --json?)']);
  });
});

describe('kindling data', () => {
  it('--help for the group and each command; bad options exit 2', async () => {
    await expectHelp(['data'], 'kindling data <command> [options]', ['preview <task>', 'export <task>']);
    await expectHelp(['data', 'list'], 'kindling data list [options]', ['Lists the tasks']);
    await expectHelp(['data', 'preview'], 'kindling data preview <task> [options]', ['--max-tokens N', '--seq-length L']);
    await expectHelp(['data', 'export'], 'kindling data export <task> [options]', ['--format json|bin', '--output FILE']);
    await expectUsageError(['data', 'export', 'sort', '--seq-lenght', '8'], ['unknown option --seq-lenght (did you mean --seq-length?)']);
    await expectUsageError(['data', 'preview', 'sort', '--count', 'three'], ['--count: expected an integer, got "three"']);
    await expectUsageError(['data', 'export', 'sort', '--format', 'csv'], ['--format: "csv" is not one of json, bin']);
    await expectUsageError(['data', 'list', '--bogus'], ['unknown option --bogus']);
    expect(await run('data')).toBe(2);
    expect(io.err).toContain('usage: kindling data <command>');
  });

  it('underscores work for its dashed options', async () => {
    expect(await run('data', 'export', 'sort', '--seq_length', '8', '--vocab_size=10')).toBe(0);
    expect(JSON.parse(io.out).ids).toEqual([7, 4, 8, 5, 7, 3, 7, 8, 10, 3, 4, 5, 7, 7, 7, 8, 8]);
  });
});

describe('kindling train', () => {
  it('--help lists the schema keys as options; bad options exit 2', async () => {
    await expectHelp(['train'], 'kindling train --task VALUE [options]', ['--config FILE', '--max_steps N', 'also --grad_clip', '--lr X', 'one of: sort, reverse']);
    expect(io.out).not.toContain('wandb');
    await expectUsageError(['train', '--task', 'sort', '--max-stepz', '3'], ['unknown key "max_stepz" on the command line (did you mean "max_steps"?)']);
    await expectUsageError(['train', '--task', 'sort', '--lr', 'fast'], ['lr: expected a number, got "fast" (from --lr)']);
    await expectUsageError(['train', '--task', 'sortt'], ['task: "sortt" is not one of sort']);
  });
});

describe('kindling experiment', () => {
  it('--help for run, report and pool; bad options exit 2', async () => {
    await expectHelp(['experiment'], 'kindling experiment <experiment> [options]', ['kindling experiment report <dir>', 'kindling experiment pool <dir>...', '--shard i/n', '--stack N', '--resume', 'quick, paper']);
    expect(io.out).not.toContain('--worker');
    await expectHelp(['experiment', 'report'], 'kindling experiment report <dir> [options]', ['experiment directory']);
    await expectUsageError(['experiment', 'quick', '--job', '2'], ['unknown option --job (did you mean --jobs?)']);
    await expectUsageError(['experiment', 'quick', '--jobs', 'two'], ['--jobs: expected an integer, got "two"']);
    await expectUsageError(['experiment', 'quick', '--shard', '3/2'], ['--shard: need 0 ≤ i < n']);
    await expectUsageError(['experiment', 'quick', '--stack', '0'], ['--stack: must be >= 1, got 0']);
    await expectUsageError(['experiment', 'quick', 'paper'], ['unexpected argument "paper"']);
    await expectUsageError(['experiment', 'report'], ['missing <dir>']);
    await expectHelp(['experiment', 'pool'], 'kindling experiment pool <dir>... --out DIR [options]', ['--steps N', '--out DIR', "Fisher's exact test"]);
    await expectUsageError(['experiment', 'pool', '--out', 'x'], ['missing <dir>']);
    await expectUsageError(['experiment', 'pool', 'a', 'b', '--out', 'x', '--steps', '0'], ['--steps: must be >= 1, got 0']);
    expect(await run('experiment')).toBe(2);
    expect(io.err).toContain('usage: kindling experiment <experiment> [options]');
  });
});

describe('kindling score', () => {
  it('--help; bad options and missing required ones exit 2', async () => {
    await expectHelp(['score'], 'kindling score --checkpoint DIR --input FILE [options]', ['--batch-size N', '(default: 16)', '(default: stdout)']);
    await expectUsageError(['score', '--checkpoint', 'c', '--input', 'i', '--batch_size', '0'], ['--batch-size: must be >= 1, got 0']);
    await expectUsageError(['score', '--checkpoint', 'c', '--inptu', 'i'], ['unknown option --inptu (did you mean --input?)']);
    await expectUsageError(['score', '--input', 'i'], ['--checkpoint is required']);
  });
});
