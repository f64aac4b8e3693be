// `kindling data …`: inspect and export the procedural pretraining data (src/data/procedural) and the
// downstream algorithmic tasks (src/data/tasks: condattendstream_N, additionstream_N, forwardaddition_N,
// multiplication_N, sort_N).
//
//   kindling data list
//   kindling data preview <task> [options]
//   kindling data export  <task> [options] [--format json|bin] [--output FILE]
//
// Export formats
//   json (default): one line per sample, {"ids":[…],"targets":[…],"loss_positions":[…]} for procedural
//        tasks and {"ids":[…],"loss_positions":[…]} for downstream tasks. loss_positions lists every
//        position p (0-based) whose output is trained to predict ids[p+1] (downstream: the wanted positions).
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
import { PyRandom } from '../util/random.ts';
import {
  DOWNSTREAM_FAMILIES,
  DOWNSTREAM_SKILLS,
  PAPER_TASK_IDS,
  createDownstreamTask,
  isDownstreamTaskId,
  type DownstreamTask,
} from '../data/tasks/index.ts';

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
/** Options that only downstream task ids take. */
const DOWNSTREAM_ONLY_OPTIONS: Record<string, OptionDef> = {
  '--fix-quirks': { key: 'fixQuirks', kind: 'flag', help: 'downstream: fix the reference quirks (score the first result digit at "=")' },
};
/** Keys of OPTIONS that downstream task ids accept. */
const DOWNSTREAM_KEYS = new Set(['seed', 'start', 'count']);

const DOWNSTREAM_HELP = `Downstream tasks (spec §6) are named name_N with name one of ${DOWNSTREAM_FAMILIES.join(', ')}
(the paper's: ${PAPER_TASK_IDS.join(', ')}). They take --seed S (default 42), --start I, --count N and
--fix-quirks: sample i is the (I+i)-th gen_single() after CPython random.seed(S) (plain draws, no test set,
no de-duplication).`;

const EXPORT_OPTIONS: Record<string, OptionDef> = {
  '--format': { key: 'format', kind: 'string', help: "'json' (JSON lines, default) or 'bin' (binary token file)" },
  '--output': { key: 'output', kind: 'string', help: 'write to FILE instead of stdout' },
};

const MAIN_HELP = `Usage: kindling data <command> [options]

Procedural pretraining data (sort reverse identity set union delete stack dyck dyck_shuffle ww eca)
and the downstream algorithmic tasks (condattendstream_N additionstream_N forwardaddition_N
multiplication_N sort_N; e.g. condattendstream_30).

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
${optionLines(DOWNSTREAM_ONLY_OPTIONS)}

${DOWNSTREAM_HELP}

Display options:
${optionLines(PREVIEW_OPTIONS)}
`;

const EXPORT_HELP = `Usage: kindling data export <task> [options]

Writes samples I..I+N-1 of the reference seeding (sample idx from RandomState(seed + idx)); for dyck and
dyck_shuffle, random.seed(seed) followed by consecutive generator calls, the first I of them skipped.

  --format json   one line per sample: {"ids":[...],"targets":[...],"loss_positions":[...]}
                  (downstream tasks: {"ids":[...],"loss_positions":[...]})
  --format bin    32-byte header (magic "KDPROC01", u32 header size, u32 N, u32 T, u32 vocab,
                  i32 PAD, u32 flags), then N*T int32 LE ids (PAD-padded rows of the context
                  length T; downstream: the task's fixed row length), then N*T uint8 loss-mask
                  bytes. All little-endian.

loss_positions lists every 0-based position p whose output is trained to predict ids[p+1]
(targets[p]), one entry per position, ascending. For downstream tasks these are the "wanted"
(trained and scored) positions of spec §6.

Task options:
${optionLines(OPTIONS)}
${optionLines(DOWNSTREAM_ONLY_OPTIONS)}

${DOWNSTREAM_HELP}

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
  lines.push('', 'Downstream tasks (name_N; the paper\'s N shown), CPython random.seed(seed) then gen_single() calls:', '');
  for (const id of PAPER_TASK_IDS) {
    const t = createDownstreamTask(id);
    const d = t.defaults;
    lines.push(`  ${id.padEnd(20)} ${DOWNSTREAM_SKILLS[t.family]}`);
    lines.push(
      `  ${''.padEnd(20)} vocab ${t.vocabSize}, row length ${t.seqLen}, model ${d.nLayer}_${d.nHead}_${d.nEmbd}, n_positions ${d.nPositions}, batch ${d.batch}, ${d.maxSteps} steps`,
    );
  }
  return lines.join('\n') + '\n';
}

interface Parsed {
  task: TaskName;
  /** Set when the task argument is a downstream task id (then `task` is meaningless). */
  downstream?: DownstreamTask;
  values: Record<string, number | boolean | string>;
  help: boolean;
}

function unknownTaskMessage(task: string): string {
  return (
    `unknown task '${task}' (expected a procedural task, one of ${TASK_NAMES.join(', ')}, ` +
    `or a downstream task id name_N with name one of ${DOWNSTREAM_FAMILIES.join(', ')}, e.g. ${PAPER_TASK_IDS.join(', ')})`
  );
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
  const defs = { ...OPTIONS, ...DOWNSTREAM_ONLY_OPTIONS, ...extra };
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
  if (task === undefined) {
    throw new UsageError(`'data ${command}' needs a task: one of ${TASK_NAMES.join(', ')}, or a downstream task id (${DOWNSTREAM_FAMILIES.join('_N, ')}_N)`);
  }
  if (isDownstreamTaskId(task)) {
    for (const [name, def] of Object.entries({ ...OPTIONS, ...DOWNSTREAM_ONLY_OPTIONS })) {
      if (values[def.key] !== undefined && !DOWNSTREAM_KEYS.has(def.key) && !(name in DOWNSTREAM_ONLY_OPTIONS)) {
        throw new UsageError(`${name} does not apply to downstream task '${task}' (it takes --seed, --start, --count, --fix-quirks)`);
      }
    }
    let downstream: DownstreamTask;
    try {
      downstream = createDownstreamTask(task, { fixQuirks: values.fixQuirks === true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    return { task: 'sort', downstream, values, help };
  }
  if (!isTaskName(task)) throw new UsageError(unknownTaskMessage(task));
  if (values.fixQuirks !== undefined) throw new UsageError(`--fix-quirks applies to downstream tasks only, not '${task}'`);
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

/** Samples start..start+count-1 of a downstream task: gen_single() calls after random.seed(seed). */
function downstreamRows(task: DownstreamTask, seed: number, start: number, count: number): Int32Array[] {
  const rng = new PyRandom(seed);
  for (let i = 0; i < start; i++) task.genSingle(rng);
  return Array.from({ length: count }, () => task.genSingle(rng));
}

function downstreamSeed(p: Parsed): number {
  const seed = (p.values.seed as number | undefined) ?? 42;
  if (seed < 0) throw new UsageError('--seed must be >= 0');
  return seed;
}

function renderDownstream(task: DownstreamTask, ids: Int32Array, wanted: Uint8Array, color: boolean, maxTokens: number): string {
  const parts: string[] = [];
  const n = Math.min(ids.length, maxTokens);
  for (let i = 0; i < n; i++) {
    const tok = task.renderToken(ids[i]);
    if (i > 0 && wanted[i - 1]) parts.push(color ? `\x1b[1;32m${tok}\x1b[0m` : `[${tok}]`);
    else if (color && ids[i] === task.padId) parts.push(`\x1b[2m${tok}\x1b[0m`);
    else parts.push(tok);
  }
  if (ids.length > n) parts.push(`… (${ids.length - n} more)`);
  return parts.join(' ');
}

async function previewDownstream(task: DownstreamTask, p: Parsed, io: DataCommandIO): Promise<number> {
  const { start, count } = rangeOf(p, 3);
  const seed = downstreamSeed(p);
  const maxTokens = (p.values.maxTokens as number | undefined) ?? 160;
  const color = p.values.noColor ? false : p.values.color ? true : Boolean(io.stdout.isTTY);
  const w = new Writer(io.stdout);
  const d = task.defaults;
  await w.write(
    `${task.id}: ${DOWNSTREAM_SKILLS[task.family]}\n` +
      `model vocab size ${task.vocabSize}, row length ${task.seqLen}, PAD ${task.padId}; defaults ${d.nLayer}_${d.nHead}_${d.nEmbd}, ` +
      `n_positions ${d.nPositions}, batch ${d.batch}, eval every ${d.evalSteps} steps, ${d.maxSteps} steps\n` +
      `quirks: ${task.fixQuirks ? 'fixed (--fix-quirks)' : 'reference (default)'}\n` +
      `seeding: random.seed(${seed}), consecutive gen_single() calls\n` +
      `tokens: ${task.legend}\n` +
      `marked (${color ? 'green' : '[x]'}): tokens predicted at wanted (trained and scored) positions\n`,
  );
  const rows = downstreamRows(task, seed, start, count);
  for (let i = 0; i < count; i++) {
    const wanted = task.wanted(rows[i]);
    const lp = Array.from(wanted.keys()).filter((q) => wanted[q] === 1);
    await w.write(
      `\n#${start + i}  ${lp.length} wanted positions: ${compactRanges(lp)}\n  ${renderDownstream(task, rows[i], wanted, color, maxTokens)}\n`,
    );
  }
  return 0;
}

async function preview(p: Parsed, io: DataCommandIO): Promise<number> {
  if (p.downstream) return previewDownstream(p.downstream, p, io);
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

function encodeBinary(
  shape: { contextLength: number; vocabSize: number; padId: number },
  samples: readonly Pick<Sample, 'ids' | 'lossMask'>[],
): Uint8Array[] {
  const N = samples.length;
  const T = shape.contextLength;
  const header = Buffer.alloc(32);
  header.write('KDPROC01', 0, 'ascii');
  header.writeUInt32LE(32, 8);
  header.writeUInt32LE(N, 12);
  header.writeUInt32LE(T, 16);
  header.writeUInt32LE(shape.vocabSize, 20);
  header.writeInt32LE(shape.padId, 24);
  header.writeUInt32LE(1, 28);
  const ids = Buffer.alloc(N * T * 4);
  const mask = Buffer.alloc(N * T);
  samples.forEach((s, b) => {
    for (let i = 0; i < T; i++) ids.writeInt32LE(i < s.ids.length ? s.ids[i] : shape.padId, (b * T + i) * 4);
    mask.set(s.lossMask, b * T);
  });
  return [header, ids, mask];
}

async function exportCommand(p: Parsed, io: DataCommandIO): Promise<number> {
  const downstream = p.downstream;
  const task = downstream ? undefined : buildTask(p);
  const { start, count } = rangeOf(p, 1);
  const seed = downstream ? downstreamSeed(p) : 0;
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
  if (downstream) {
    const rows = downstreamRows(downstream, seed, start, count);
    if (format === 'json') {
      for (let i = 0; i < count && !w.closed; i++) {
        const wanted = downstream.wanted(rows[i]);
        const lp = Array.from(wanted.keys()).filter((q) => wanted[q] === 1);
        await w.write(`{"ids":[${rows[i].join(',')}],"loss_positions":[${lp.join(',')}]}\n`);
      }
    } else {
      if (!file && io.stdout.isTTY) throw new UsageError('refusing to write binary data to a terminal; use --output FILE or a pipe');
      const shape = { contextLength: downstream.seqLen, vocabSize: downstream.vocabSize, padId: downstream.padId };
      for (const chunk of encodeBinary(shape, rows.map((ids) => ({ ids, lossMask: downstream.wanted(ids) })))) await w.write(chunk);
    }
  } else if (!task) {
    throw new Error('unreachable');
  } else if (format === 'json') {
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
