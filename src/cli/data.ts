// `kindling data …`: inspect and export the procedural pretraining data (src/data/procedural).
//
//   kindling data list
//   kindling data preview <task> [options]
//   kindling data export  <task> [options] [--format json|bin] [--output FILE]
//
// Export formats
//   json (default): one line per sample, {"ids":[…],"targets":[…],"loss_positions":[…]}.
//   bin: a 32-byte little-endian header, then the ids of all samples as int32 LE, row-major and
//        PAD-padded to the task's context length, then one uint8 loss-mask byte per position:
//          0  char[8] magic "KDPROC01"
//          8  u32     header size in bytes (32)
//         12  u32     N, number of samples
//         16  u32     T, tokens per sample (the task's context length n_positions)
//         20  u32     model vocabulary size
//         24  i32     PAD id (targets = ids shifted left by one with PAD appended)
//         28  u32     flags: bit 0 = a loss-mask section (N·T bytes) follows the ids
//         32  int32   ids[N·T]
//     32+4NT  uint8   lossMask[N·T]

import { createWriteStream } from 'node:fs';
import {
  DEFAULT_CONFIGS,
  TASK_NAMES,
  TASK_SKILLS,
  createTask,
  isTaskName,
  lossPositions,
  taskAccess,
  type ProceduralTask,
  type Sample,
  type TaskName,
} from '../data/procedural/index.ts';

/** Minimal stream interfaces, so that tests can capture the output. */
export interface DataCommandIO {
  stdout: OutStream;
  stderr: { write(chunk: string): unknown };
}
interface OutStream {
  write(chunk: string | Uint8Array): boolean | void;
  isTTY?: boolean;
  once?(event: 'drain', listener: () => void): unknown;
  on?(event: 'error', listener: (err: unknown) => void): unknown;
}

class UsageError extends Error {}

type OptionKind = 'int' | 'float' | 'flag' | 'string';
interface OptionDef {
  key: string;
  kind: OptionKind;
  help: string;
  /** Tasks the option applies to (undefined = all). */
  tasks?: readonly TaskName[];
}

const ALGO: readonly TaskName[] = ['sort', 'reverse', 'identity', 'set', 'union', 'delete', 'stack', 'ww'];
const DYCK: readonly TaskName[] = ['dyck', 'dyck_shuffle'];

const OPTIONS: Record<string, OptionDef> = {
  '--seq-length': { key: 'seqLength', kind: 'int', help: 'L, input length / cells per row (default 64)', tasks: [...ALGO, 'eca'] },
  '--vocab-size': { key: 'vocabSize', kind: 'int', help: 'V, content tokens are 1..V-1, SEP=V, PAD=V+1 (default 100)', tasks: ALGO },
  '--curriculum-length': {
    key: 'curriculumLength',
    kind: 'int',
    help: 'generate with L = this curriculum length (<= seq-length); context stays that of seq-length',
    tasks: [...ALGO, 'eca'],
  },
  '--loss-on-all': { key: 'lossOnAll', kind: 'flag', help: 'ww: loss on every position but the last', tasks: ['ww'] },
  '--rule': { key: 'rule', kind: 'int', help: 'eca: Wolfram rule 0..255 (default 110)', tasks: ['eca'] },
  '--rows': { key: 'rows', kind: 'int', help: 'eca: rows T in s0 SEP s1 … (default 2)', tasks: ['eca'] },
  '--burn-in': { key: 'burnIn', kind: 'int', help: 'eca: rule applications before s0 (default 0)', tasks: ['eca'] },
  '--k': { key: 'k', kind: 'int', help: 'dyck: bracket types (default 64)', tasks: DYCK },
  '--length': { key: 'length', kind: 'int', help: 'dyck: sequence length n (default 2048)', tasks: DYCK },
  '--p-open': { key: 'pOpen', kind: 'float', help: 'dyck: opening probability (default 0.5)', tasks: DYCK },
  '--max-depth': { key: 'maxDepth', kind: 'int', help: 'dyck_shuffle: depth cap (default 16)', tasks: DYCK },
  '--seed': { key: 'seed', kind: 'int', help: 'base seed (default 42): sample idx uses RandomState(seed+idx); dyck: random.seed(seed)' },
  '--shuffled': { key: 'shuffled', kind: 'flag', help: 'the shuffled control: tokens permuted within each sample' },
  '--start': { key: 'start', kind: 'int', help: 'first sample index I (dyck: generator calls to skip) (default 0)' },
  '--count': { key: 'count', kind: 'int', help: 'number of samples N (default: preview 3, export 1)' },
};
const PREVIEW_OPTIONS: Record<string, OptionDef> = {
  '--max-tokens': { key: 'maxTokens', kind: 'int', help: 'tokens shown per sample before eliding (default 160)' },
  '--color': { key: 'color', kind: 'flag', help: 'colour loss targets even when stdout is not a terminal' },
  '--no-color': { key: 'noColor', kind: 'flag', help: 'mark loss targets with [brackets] even on a terminal' },
};
const EXPORT_OPTIONS: Record<string, OptionDef> = {
  '--format': { key: 'format', kind: 'string', help: "'json' (JSON lines, default) or 'bin' (binary token file)" },
  '--output': { key: 'output', kind: 'string', help: 'write to FILE instead of stdout' },
};

const MAIN_HELP = `Usage: kindling data <command> [options]

Procedural pretraining data (sort reverse identity set union delete stack dyck dyck_shuffle ww eca).

Commands:
  list               list the tasks, what they train and their defaults
  preview <task>     print a few samples with the loss-carrying tokens marked
  export <task>      write samples as JSON lines or a binary token file

Run 'kindling data <command> --help' for the options of a command.
`;

function optionLines(defs: Record<string, OptionDef>): string {
  return Object.entries(defs)
    .map(([name, d]) => {
      const arg = d.kind === 'flag' ? '' : d.kind === 'string' ? ' VALUE' : d.kind === 'float' ? ' X' : ' N';
      const scope = d.tasks ? ` [${d.tasks.join(', ')}]` : '';
      return `  ${(name + arg).padEnd(24)} ${d.help}${scope}`;
    })
    .join('\n');
}

const PREVIEW_HELP = `Usage: kindling data preview <task> [options]

Prints samples with the tokens predicted under loss marked: coloured on a terminal, [bracketed]
otherwise (position p carries loss <=> its target ids[p+1] is marked). Also prints the model
vocabulary size and context length (n_positions). SEP prints as '|', PAD as '_'.

Task options:
${optionLines(OPTIONS)}

Display options:
${optionLines(PREVIEW_OPTIONS)}
`;

const EXPORT_HELP = `Usage: kindling data export <task> [options]

Writes samples I..I+N-1 of the reference seeding (sample idx from RandomState(seed + idx)); for dyck and
dyck_shuffle, random.seed(seed) followed by consecutive generator calls, the first I of them skipped.

  --format json   one line per sample: {"ids":[...],"targets":[...],"loss_positions":[...]}
  --format bin    32-byte header (magic "KDPROC01", u32 header size, u32 N, u32 T, u32 vocab,
                  i32 PAD, u32 flags), then N*T int32 LE ids (PAD-padded rows of the context
                  length T), then N*T uint8 loss-mask bytes. All little-endian.

Task options:
${optionLines(OPTIONS)}

Output options:
${optionLines(EXPORT_OPTIONS)}
`;

function listText(): string {
  const lines = ['Tasks (reference names) and their defaults:', ''];
  for (const name of TASK_NAMES) {
    const task = createTask(name);
    const cfg = Object.entries(DEFAULT_CONFIGS[name])
      .filter(([k]) => k !== 'shuffled')
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    lines.push(`  ${name.padEnd(13)} ${TASK_SKILLS[name]}`);
    lines.push(
      `  ${''.padEnd(13)} ${cfg}; vocab ${task.vocabSize}, context ${task.contextLength}, ${taskAccess(name) === 'stream' ? 'one CPython random stream' : 'RandomState(seed+idx) per sample'}`,
    );
  }
  return lines.join('\n') + '\n';
}

interface Parsed {
  task: TaskName;
  values: Record<string, number | boolean | string>;
  help: boolean;
}

function parseNumber(raw: string, kind: 'int' | 'float', name: string): number {
  if (kind === 'int') {
    if (!/^-?\d+$/.test(raw)) throw new UsageError(`${name} expects an integer, got '${raw}'`);
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) throw new UsageError(`${name} is out of range: ${raw}`);
    return n;
  }
  const x = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(x)) throw new UsageError(`${name} expects a number, got '${raw}'`);
  return x;
}

function parseArgs(args: string[], extra: Record<string, OptionDef>, command: string): Parsed {
  const defs = { ...OPTIONS, ...extra };
  const values: Record<string, number | boolean | string> = {};
  let task: string | undefined;
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-')) {
      if (task !== undefined) throw new UsageError(`unexpected argument '${arg}'`);
      task = arg;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const def = defs[name];
    if (!def) throw new UsageError(`unknown option '${name}' for 'data ${command}' (see 'kindling data ${command} --help')`);
    if (def.kind === 'flag') {
      if (eq >= 0) throw new UsageError(`${name} takes no value`);
      values[def.key] = true;
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else raw = args[++i];
    if (raw === undefined) throw new UsageError(`${name} needs a value`);
    values[def.key] = def.kind === 'string' ? raw : parseNumber(raw, def.kind, name);
  }
  if (help) return { task: 'sort', values, help };
  if (task === undefined) throw new UsageError(`'data ${command}' needs a task: one of ${TASK_NAMES.join(', ')}`);
  if (!isTaskName(task)) throw new UsageError(`unknown task '${task}' (expected one of ${TASK_NAMES.join(', ')})`);
  for (const [name, def] of Object.entries(defs)) {
    if (def.tasks && values[def.key] !== undefined && !def.tasks.includes(task)) {
      throw new UsageError(`${name} does not apply to task '${task}' (it applies to ${def.tasks.join(', ')})`);
    }
  }
  return { task, values, help };
}

function buildTask(p: Parsed): ProceduralTask {
  const overrides: Record<string, unknown> = {};
  for (const def of Object.values(OPTIONS)) {
    if (def.key === 'start' || def.key === 'count') continue;
    if (p.values[def.key] !== undefined) overrides[def.key] = p.values[def.key];
  }
  try {
    return createTask(p.task, overrides);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function rangeOf(p: Parsed, defaultCount: number): { start: number; count: number } {
  const start = (p.values.start as number | undefined) ?? 0;
  const count = (p.values.count as number | undefined) ?? defaultCount;
  if (start < 0) throw new UsageError('--start must be >= 0');
  if (count < 0) throw new UsageError('--count must be >= 0');
  return { start, count };
}

/** Writes with backpressure; stops quietly once the consumer has gone away (e.g. EPIPE from `| head`). */
class Writer {
  private broken = false;
  private readonly gone: Promise<void>;
  constructor(private readonly out: OutStream) {
    this.gone = new Promise<void>((resolve) => {
      out.on?.('error', () => {
        this.broken = true;
        resolve();
      });
    });
  }
  get closed(): boolean {
    return this.broken;
  }
  async write(chunk: string | Uint8Array): Promise<void> {
    if (this.broken) return;
    const ok = this.out.write(chunk);
    if (ok === false && this.out.once) {
      const drained = new Promise<void>((resolve) => this.out.once!('drain', () => resolve()));
      await Promise.race([drained, this.gone]);
    }
  }
}

function compactRanges(positions: number[]): string {
  if (positions.length === 0) return 'none';
  const parts: string[] = [];
  let a = positions[0];
  let b = a;
  for (let i = 1; i <= positions.length; i++) {
    const p = positions[i];
    if (p === b + 1) {
      b = p;
      continue;
    }
    parts.push(a === b ? `${a}` : `${a}..${b}`);
    a = b = p;
  }
  return parts.join(', ');
}

function renderToken(task: ProceduralTask, t: number): string {
  if (t === task.padId) return '_';
  if (task.sepId !== undefined && t === task.sepId) return '|';
  if (task.name === 'dyck' || task.name === 'dyck_shuffle') {
    const k = (task.config as { k: number }).k;
    return t < k ? `(${t}` : `${t - k})`;
  }
  return String(t);
}

function renderSample(task: ProceduralTask, s: Sample, color: boolean, maxTokens: number): string {
  const marked = new Uint8Array(s.ids.length);
  for (let p = 0; p + 1 < s.ids.length; p++) if (s.lossMask[p]) marked[p + 1] = 1;
  const parts: string[] = [];
  const n = Math.min(s.ids.length, maxTokens);
  for (let i = 0; i < n; i++) {
    const tok = renderToken(task, s.ids[i]);
    if (marked[i]) parts.push(color ? `\x1b[1;32m${tok}\x1b[0m` : `[${tok}]`);
    else if (color && (s.ids[i] === task.padId || s.ids[i] === task.sepId)) parts.push(`\x1b[2m${tok}\x1b[0m`);
    else parts.push(tok);
  }
  if (s.ids.length > n) parts.push(`… (${s.ids.length - n} more)`);
  return parts.join(' ');
}

function configLine(task: ProceduralTask): string {
  return Object.entries(task.config)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

async function preview(p: Parsed, io: DataCommandIO): Promise<number> {
  const task = buildTask(p);
  const { start, count } = rangeOf(p, 3);
  const maxTokens = (p.values.maxTokens as number | undefined) ?? 160;
  const color = p.values.noColor ? false : p.values.color ? true : Boolean(io.stdout.isTTY);
  const w = new Writer(io.stdout);
  const seeding =
    taskAccess(task.name) === 'stream'
      ? `random.seed(${task.config.seed}), consecutive calls`
      : `sample idx from RandomState(${task.config.seed} + idx)`;
  await w.write(
    `${task.name}: ${TASK_SKILLS[task.name]}\n` +
      `config: ${configLine(task)}\n` +
      `model vocab size ${task.vocabSize}, context length (n_positions) ${task.contextLength}, PAD ${task.padId}` +
      (task.sepId !== undefined ? `, SEP ${task.sepId}` : '') +
      `\nseeding: ${seeding}\n` +
      `marked (${color ? 'green' : '[x]'}): tokens predicted under loss; '|' = SEP, '_' = PAD\n`,
  );
  for (let i = 0; i < count; i++) {
    const idx = start + i;
    const s = task.sample(idx);
    const lp = lossPositions(s);
    await w.write(
      `\n#${idx}  length ${s.ids.length}, ${lp.length} loss positions: ${compactRanges(lp)}\n  ${renderSample(task, s, color, maxTokens)}\n`,
    );
  }
  return 0;
}

function encodeBinary(task: ProceduralTask, samples: Sample[]): Uint8Array[] {
  const N = samples.length;
  const T = task.contextLength;
  const header = Buffer.alloc(32);
  header.write('KDPROC01', 0, 'ascii');
  header.writeUInt32LE(32, 8);
  header.writeUInt32LE(N, 12);
  header.writeUInt32LE(T, 16);
  header.writeUInt32LE(task.vocabSize, 20);
  header.writeInt32LE(task.padId, 24);
  header.writeUInt32LE(1, 28);
  const ids = Buffer.alloc(N * T * 4);
  const mask = Buffer.alloc(N * T);
  samples.forEach((s, b) => {
    for (let i = 0; i < T; i++) ids.writeInt32LE(i < s.ids.length ? s.ids[i] : task.padId, (b * T + i) * 4);
    mask.set(s.lossMask, b * T);
  });
  return [header, ids, mask];
}

async function exportCommand(p: Parsed, io: DataCommandIO): Promise<number> {
  const task = buildTask(p);
  const { start, count } = rangeOf(p, 1);
  const format = (p.values.format as string | undefined) ?? 'json';
  if (format !== 'json' && format !== 'bin') throw new UsageError(`--format must be 'json' or 'bin', got '${format}'`);
  const outputPath = p.values.output as string | undefined;
  const file = outputPath !== undefined ? createWriteStream(outputPath) : undefined;
  if (file) {
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', (e) => reject(new UsageError(`cannot write ${outputPath}: ${e.message}`)));
    });
  }
  const w = new Writer(file ?? io.stdout);
  if (format === 'json') {
    for (let i = 0; i < count && !w.closed; i++) {
      const s = task.sample(start + i);
      await w.write(
        `{"ids":[${s.ids.join(',')}],"targets":[${s.targets.join(',')}],"loss_positions":[${lossPositions(s).join(',')}]}\n`,
      );
    }
  } else {
    if (!file && io.stdout.isTTY) throw new UsageError('refusing to write binary data to a terminal; use --output FILE or a pipe');
    for (const chunk of encodeBinary(task, task.samples(start, count))) await w.write(chunk);
  }
  if (file) await new Promise<void>((resolve, reject) => file.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return 0;
}

/** Entry point for `kindling data …` (argv = the arguments after `data`). Returns the exit code. */
export async function runDataCommand(
  argv: string[],
  io: DataCommandIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.stdout.write(MAIN_HELP);
        return command === undefined ? 1 : 0;
      case 'list':
        if (rest.includes('--help') || rest.includes('-h')) io.stdout.write('Usage: kindling data list\n\nLists the tasks and their defaults.\n');
        else if (rest.length > 0) throw new UsageError(`'data list' takes no arguments, got '${rest[0]}'`);
        else io.stdout.write(listText());
        return 0;
      case 'preview': {
        const p = parseArgs(rest, PREVIEW_OPTIONS, 'preview');
        if (p.help) {
          io.stdout.write(PREVIEW_HELP);
          return 0;
        }
        return await preview(p, io);
      }
      case 'export': {
        const p = parseArgs(rest, EXPORT_OPTIONS, 'export');
        if (p.help) {
          io.stdout.write(EXPORT_HELP);
          return 0;
        }
        return await exportCommand(p, io);
      }
      default:
        throw new UsageError(`unknown data command '${command}' (expected list, preview or export)`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof RangeError) {
      io.stderr.write(`kindling data: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
