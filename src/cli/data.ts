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
import { closest, formatHelp, parseCommand, UsageError, type CommandSpec, type OptionSpec } from '../util/args.ts';

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

/** A task option: its parser spec, the generator config key it sets, and the tasks it applies to. */
interface TaskOption extends OptionSpec {
  /** The generator config key (createTask overrides) or the command's own value name. */
  key: string;
  /** Tasks the option applies to (undefined = all). */
  tasks?: readonly TaskName[];
}

const ALGO: readonly TaskName[] = ['sort', 'reverse', 'identity', 'set', 'union', 'delete', 'stack', 'ww', 'uniform'];
const DYCK: readonly TaskName[] = ['dyck', 'dyck_shuffle'];

const scoped = (o: TaskOption): TaskOption => ({ ...o, group: 'task options', doc: o.tasks ? `${o.doc} [${o.tasks.join(', ')}]` : o.doc });

const TASK_OPTIONS: Record<string, TaskOption> = Object.fromEntries(
  Object.entries({
    'seq-length': { key: 'seqLength', type: 'int', metavar: 'L', doc: 'L, input length / cells per row', defaultDoc: '64', tasks: [...ALGO, 'eca'] },
    'vocab-size': { key: 'vocabSize', type: 'int', metavar: 'V', doc: 'V, content tokens are 1..V-1, SEP=V, PAD=V+1', defaultDoc: '100', tasks: ALGO },
    'curriculum-length': { key: 'curriculumLength', type: 'int', metavar: 'N', doc: 'generate with L = this curriculum length (<= seq-length); context stays that of seq-length', tasks: [...ALGO, 'eca'] },
    'loss-on-all': { key: 'lossOnAll', type: 'bool', doc: 'ww: loss on every position but the last', tasks: ['ww'] },
    rule: { key: 'rule', type: 'int', metavar: 'R', doc: 'eca: Wolfram rule 0..255', defaultDoc: '110', tasks: ['eca'] },
    rows: { key: 'rows', type: 'int', metavar: 'T', doc: 'eca: rows T in s0 SEP s1 …', defaultDoc: '2', tasks: ['eca'] },
    'burn-in': { key: 'burnIn', type: 'int', metavar: 'B', doc: 'eca: rule applications before s0', defaultDoc: '0', tasks: ['eca'] },
    k: { key: 'k', type: 'int', metavar: 'K', doc: 'dyck: bracket types', defaultDoc: '64', tasks: DYCK },
    length: { key: 'length', type: 'int', metavar: 'N', doc: 'dyck: sequence length n', defaultDoc: '2048', tasks: DYCK },
    'p-open': { key: 'pOpen', type: 'number', metavar: 'P', doc: 'dyck: opening probability', defaultDoc: '0.5', tasks: DYCK },
    'max-depth': { key: 'maxDepth', type: 'int', metavar: 'D', doc: 'dyck_shuffle: depth cap', defaultDoc: '16', tasks: DYCK },
    seed: { key: 'seed', type: 'int', metavar: 'S', min: 0, defaultDoc: '42', doc: 'base seed: sample idx uses RandomState(seed+idx); dyck: random.seed(seed)' },
    shuffled: { key: 'shuffled', type: 'bool', doc: 'the shuffled control: tokens permuted within each sample' },
    start: { key: 'start', type: 'int', metavar: 'I', min: 0, doc: 'first sample index I (dyck: generator calls to skip)', defaultDoc: '0' },
    count: { key: 'count', type: 'int', metavar: 'N', min: 0, doc: 'number of samples N' },
    'fix-quirks': { key: 'fixQuirks', type: 'bool', doc: 'downstream: fix the reference quirks (score the first result digit at "=")' },
  } satisfies Record<string, TaskOption>).map(([name, o]) => [name, scoped(o)]),
);
/** Options that downstream task ids accept (of TASK_OPTIONS). */
const DOWNSTREAM_OPTIONS = new Set(['seed', 'start', 'count', 'fix-quirks']);

const PREVIEW_OPTIONS: Record<string, OptionSpec> = {
  'max-tokens': { type: 'int', default: 160, min: 1, metavar: 'N', group: 'display options', doc: 'tokens shown per sample before eliding' },
  color: { type: 'bool', group: 'display options', defaultDoc: 'on a terminal', doc: 'colour loss targets (--no-color: mark them with [brackets] even on a terminal)' },
};

const EXPORT_OPTIONS: Record<string, OptionSpec> = {
  format: { type: 'enum', choices: ['json', 'bin'], default: 'json', group: 'output options', doc: 'JSON lines, or a binary token file' },
  output: { type: 'string', metavar: 'FILE', defaultDoc: 'stdout', group: 'output options', doc: 'write to FILE' },
};

const TASK_ARG = {
  name: 'task',
  required: true,
  doc: `a procedural task (${TASK_NAMES.join(', ')}) or a downstream task id name_N (${DOWNSTREAM_FAMILIES.map((f) => `${f}_N`).join(', ')})`,
};

const DOWNSTREAM_HELP = `Downstream tasks (spec §6) are named name_N with name one of ${DOWNSTREAM_FAMILIES.join(', ')}
(the paper's: ${PAPER_TASK_IDS.join(', ')}). They take --seed S (default 42), --start I, --count N and
--fix-quirks: sample i is the (I+i)-th gen_single() after CPython random.seed(S) (plain draws, no test set,
no de-duplication).`;

export const DATA_SPEC: CommandSpec = {
  command: 'kindling data',
  summary:
    `Procedural pretraining data (${TASK_NAMES.join(' ')}) and the ` +
    'downstream algorithmic tasks (condattendstream_N additionstream_N forwardaddition_N multiplication_N sort_N; ' +
    'e.g. condattendstream_30). Run `kindling data <command> --help` for the options of a command.',
  subcommands: {
    list: 'list the tasks, what they train and their defaults',
    'preview <task>': 'print a few samples with the loss-carrying tokens marked',
    'export <task>': 'write samples as JSON lines or a binary token file',
  },
  options: {},
};

export const DATA_LIST_SPEC: CommandSpec = { command: 'kindling data list', summary: 'Lists the tasks and their defaults.', options: {} };

export const DATA_PREVIEW_SPEC: CommandSpec = {
  command: 'kindling data preview',
  summary:
    'Prints samples with the tokens predicted under loss marked: coloured on a terminal, [bracketed] ' +
    'otherwise (position p carries loss <=> its target ids[p+1] is marked). Also prints the model ' +
    "vocabulary size and context length (n_positions). SEP prints as '|', PAD as '_'.",
  positionals: [TASK_ARG],
  options: { ...TASK_OPTIONS, count: { ...TASK_OPTIONS.count!, default: 3 }, ...PREVIEW_OPTIONS },
  notes: DOWNSTREAM_HELP,
};

export const DATA_EXPORT_SPEC: CommandSpec = {
  command: 'kindling data export',
  summary:
    'Writes samples I..I+N-1 of the reference seeding (sample idx from RandomState(seed + idx)); for dyck and ' +
    'dyck_shuffle, random.seed(seed) followed by consecutive generator calls, the first I of them skipped.',
  positionals: [TASK_ARG],
  options: { ...TASK_OPTIONS, count: { ...TASK_OPTIONS.count!, default: 1 }, ...EXPORT_OPTIONS },
  notes: `Formats:
  --format json   one line per sample: {"ids":[...],"targets":[...],"loss_positions":[...]}
                  (downstream tasks: {"ids":[...],"loss_positions":[...]})
  --format bin    32-byte header (magic "KDPROC01", u32 header size, u32 N, u32 T, u32 vocab,
                  i32 PAD, u32 flags), then N*T int32 LE ids (PAD-padded rows of the context
                  length T; downstream: the task's fixed row length), then N*T uint8 loss-mask
                  bytes. All little-endian.

loss_positions lists every 0-based position p whose output is trained to predict ids[p+1]
(targets[p]), one entry per position, ascending. For downstream tasks these are the "wanted"
(trained and scored) positions of spec §6.

${DOWNSTREAM_HELP}`,
};

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
  /** Option values by canonical name (defaults filled in). */
  values: Record<string, unknown>;
  /** Options given on the command line. */
  given: Set<string>;
}

function unknownTaskMessage(task: string): string {
  return (
    `unknown task '${task}' (expected a procedural task, one of ${TASK_NAMES.join(', ')}, ` +
    `or a downstream task id name_N with name one of ${DOWNSTREAM_FAMILIES.join(', ')}, e.g. ${PAPER_TASK_IDS.join(', ')})`
  );
}

/** Parses `preview|export <task> [options]` and checks which options apply to the task. */
function parseTaskArgs(spec: CommandSpec, argv: readonly string[]): Parsed | null {
  const p = parseCommand(spec, argv);
  if (p.help) return null;
  const task = p.args.task as string;
  const values = p.options as Record<string, unknown>;
  if (isDownstreamTaskId(task)) {
    for (const name of p.given) {
      if (name in TASK_OPTIONS && !DOWNSTREAM_OPTIONS.has(name)) {
        throw new UsageError(`--${name} does not apply to downstream task '${task}' (it takes --seed, --start, --count, --fix-quirks)`, name);
      }
    }
    let downstream: DownstreamTask;
    try {
      downstream = createDownstreamTask(task, { fixQuirks: values['fix-quirks'] === true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    return { task: 'sort', downstream, values, given: p.given };
  }
  if (!isTaskName(task)) throw new UsageError(unknownTaskMessage(task));
  if (p.given.has('fix-quirks')) throw new UsageError(`--fix-quirks applies to downstream tasks only, not '${task}'`, 'fix-quirks');
  for (const name of p.given) {
    const tasks = TASK_OPTIONS[name]?.tasks;
    if (tasks && !tasks.includes(task)) throw new UsageError(`--${name} does not apply to task '${task}' (it applies to ${tasks.join(', ')})`, name);
  }
  return { task, values, given: p.given };
}

function buildTask(p: Parsed): ProceduralTask {
  const overrides: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(TASK_OPTIONS)) {
    if (name === 'start' || name === 'count' || name === 'fix-quirks') continue;
    if (p.given.has(name)) overrides[o.key] = p.values[name];
  }
  try {
    return createTask(p.task, overrides);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function rangeOf(p: Parsed): { start: number; count: number } {
  return { start: (p.values.start as number | undefined) ?? 0, count: p.values.count as number };
}

/** Characters of text, and numbers of a JSON list, handed on at a time: no line is ever built whole. */
const TEXT_PIECE = 1 << 16;
const LIST_PIECE = 1 << 14;

/**
 * Writes with backpressure; stops once the stream fails. The consumer going away (EPIPE from `| head`)
 * ends the output quietly; any other failure (ENOSPC on a full disk, EIO) is kept in `error`.
 */
class Writer {
  private broken = false;
  private pending = '';
  private readonly gone: Promise<void>;
  error: unknown = null;
  constructor(private readonly out: OutStream) {
    this.gone = new Promise<void>((resolve) => {
      out.on?.('error', (e) => {
        this.broken = true;
        if ((e as NodeJS.ErrnoException | null)?.code !== 'EPIPE') this.error = e;
        resolve();
      });
    });
  }
  get closed(): boolean {
    return this.broken;
  }
  /** Queues text, handing it to the stream in pieces of about TEXT_PIECE characters. */
  async text(s: string): Promise<void> {
    this.pending += s;
    if (this.pending.length >= TEXT_PIECE) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.pending === '') return;
    const t = this.pending;
    this.pending = '';
    await this.write(t);
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
  return (p.values.seed as number | undefined) ?? 42;
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
  const { start, count } = rangeOf(p);
  const seed = downstreamSeed(p);
  const maxTokens = p.values['max-tokens'] as number;
  const color = (p.values.color as boolean | undefined) ?? Boolean(io.stdout.isTTY);
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
  const { start, count } = rangeOf(p);
  const maxTokens = p.values['max-tokens'] as number;
  const color = (p.values.color as boolean | undefined) ?? Boolean(io.stdout.isTTY);
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

/** Largest count of samples a bin file holds: N is a u32 in the header. */
export const BIN_MAX_SAMPLES = 0xffffffff;

/**
 * The bin format, streamed: the header, then the ids of every row (from one pass over `rows()`), then
 * the loss masks (from a second pass), in pieces of about 1 MiB, so memory stays that of one piece
 * whatever N·T is. `rows` must give the same N rows each time it is called.
 */
async function writeBinary(
  w: Writer,
  shape: { contextLength: number; vocabSize: number; padId: number },
  N: number,
  rows: () => Iterable<Pick<Sample, 'ids' | 'lossMask'>>,
): Promise<void> {
  const T = shape.contextLength;
  const header = Buffer.alloc(32);
  header.write('KDPROC01', 0, 'ascii');
  header.writeUInt32LE(32, 8);
  header.writeUInt32LE(N, 12);
  header.writeUInt32LE(T, 16);
  header.writeUInt32LE(shape.vocabSize, 20);
  header.writeInt32LE(shape.padId, 24);
  header.writeUInt32LE(1, 28);
  await w.write(header);
  const perPiece = Math.max(1, Math.floor((1 << 20) / (4 * T)));
  for (const section of ['ids', 'mask'] as const) {
    const width = section === 'ids' ? 4 : 1;
    let piece = Buffer.alloc(perPiece * T * width);
    let n = 0;
    let written = 0;
    for (const s of rows()) {
      if (w.closed) return;
      const at = n * T;
      if (section === 'ids') {
        const ids = new Int32Array(T).fill(shape.padId);
        ids.set(s.ids.subarray(0, T));
        for (let i = 0; i < T; i++) piece.writeInt32LE(ids[i]!, (at + i) * 4);
      } else {
        piece.fill(0, at, at + T);
        piece.set(s.lossMask.subarray(0, T), at);
      }
      written++;
      if (++n === perPiece) {
        await w.write(piece);
        piece = Buffer.alloc(perPiece * T * width);
        n = 0;
      }
    }
    if (n > 0) await w.write(piece.subarray(0, n * T * width));
    if (written !== N) throw new Error(`bin export: ${written} rows where the header says ${N}`);
  }
}

/** `{"name":[…],…}\n` written in pieces: the numbers of each list LIST_PIECE at a time. */
async function writeJsonLine(w: Writer, fields: readonly (readonly [string, Int32Array | { positionsOf: Uint8Array }])[]): Promise<void> {
  let sep = '{';
  for (const [name, v] of fields) {
    await w.text(`${sep}"${name}":[`);
    sep = ',';
    if (v instanceof Int32Array) {
      for (let i = 0; i < v.length; i += LIST_PIECE) await w.text((i > 0 ? ',' : '') + v.subarray(i, i + LIST_PIECE).join(','));
    } else {
      const m = v.positionsOf;
      let first = true;
      let list: number[] = [];
      for (let p = 0; p <= m.length; p++) {
        if (p < m.length && m[p]) list.push(p);
        if (list.length === LIST_PIECE || (p === m.length && list.length > 0)) {
          await w.text((first ? '' : ',') + list.join(','));
          first = false;
          list = [];
        }
      }
    }
    await w.text(']');
  }
  await w.text('}\n');
}

/**
 * Checks the export's counts against what the format and the seeding can address before writing
 * anything: N fits the bin header's u32, and sample seeds seed + idx stay within numpy's 2^32 - 1.
 */
function checkExportRange(p: Parsed, task: ProceduralTask | undefined, start: number, count: number): void {
  if (p.values.format === 'bin' && count > BIN_MAX_SAMPLES) {
    throw new UsageError(`--count: the bin format holds at most ${BIN_MAX_SAMPLES} samples (N is a u32 in its header), got ${count}; use several files or --format json`, 'count');
  }
  if (task && task.randomAccess && count > 0) {
    const last = task.config.seed + start + count - 1;
    if (last > 0xffffffff) {
      throw new UsageError(
        `--start/--count: sample idx uses RandomState(seed + idx), and seed + idx must stay <= 4294967295; ` +
          `seed ${task.config.seed} + start ${start} + count ${count} - 1 = ${last}`,
        'count',
      );
    }
  }
}

async function exportCommand(p: Parsed, io: DataCommandIO): Promise<number> {
  const downstream = p.downstream;
  const task = downstream ? undefined : buildTask(p);
  const { start, count } = rangeOf(p);
  checkExportRange(p, task, start, count);
  const seed = downstream ? downstreamSeed(p) : 0;
  const format = p.values.format as 'json' | 'bin';
  const outputPath = p.values.output as string | undefined;
  if (format === 'bin' && !outputPath && io.stdout.isTTY) throw new UsageError('refusing to write binary data to a terminal; use --output FILE or a pipe');
  const file = outputPath !== undefined ? createWriteStream(outputPath) : undefined;
  if (file) {
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', (e) => reject(new UsageError(`cannot write ${outputPath}: ${e.message}`)));
    });
  }
  const w = new Writer(file ?? io.stdout);
  if (downstream) {
    const rows = function* (): Generator<{ ids: Int32Array; lossMask: Uint8Array }> {
      const rng = new PyRandom(seed);
      for (let i = 0; i < start; i++) downstream.genSingle(rng);
      for (let i = 0; i < count; i++) {
        const ids = downstream.genSingle(rng);
        yield { ids, lossMask: downstream.wanted(ids) };
      }
    };
    if (format === 'json') {
      for (const r of rows()) {
        if (w.closed) break;
        await writeJsonLine(w, [['ids', r.ids], ['loss_positions', { positionsOf: r.lossMask }]]);
      }
    } else {
      await writeBinary(w, { contextLength: downstream.seqLen, vocabSize: downstream.vocabSize, padId: downstream.padId }, count, rows);
    }
  } else if (!task) {
    throw new Error('unreachable');
  } else if (format === 'json') {
    for (let i = 0; i < count && !w.closed; i++) {
      const s = task.sample(start + i);
      await writeJsonLine(w, [['ids', s.ids], ['targets', s.targets], ['loss_positions', { positionsOf: s.lossMask }]]);
    }
  } else {
    await writeBinary(w, task, count, function* () {
      for (let i = 0; i < count; i++) yield task.sample(start + i);
    });
  }
  await w.flush();
  if (file && !w.closed) {
    await new Promise<void>((resolve) =>
      file.end((e?: Error | null) => {
        if (e && (e as NodeJS.ErrnoException).code !== 'EPIPE') w.error ??= e;
        resolve();
      }),
    );
  }
  // A failed write (ENOSPC, EIO) surfaces as the stream's 'error' event, also when it happens at the final flush.
  if (w.error) throw new Error(`cannot write ${outputPath ?? 'stdout'}: ${(w.error as Error).message ?? String(w.error)}`);
  return 0;
}

/** Entry point for `kindling data …` (argv = the arguments after `data`). Returns the exit code. */
export async function runDataCommand(
  argv: string[],
  io: DataCommandIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [command, ...rest] = argv;
  const help = (spec: CommandSpec): number => {
    io.stdout.write(formatHelp(spec));
    return 0;
  };
  try {
    switch (command) {
      case undefined:
        io.stderr.write(formatHelp(DATA_SPEC));
        return 2;
      case '--help':
      case '-h':
      case 'help':
        return help(DATA_SPEC);
      case 'list':
        if (parseCommand(DATA_LIST_SPEC, rest).help) return help(DATA_LIST_SPEC);
        io.stdout.write(listText());
        return 0;
      case 'preview': {
        const p = parseTaskArgs(DATA_PREVIEW_SPEC, rest);
        return p ? await preview(p, io) : help(DATA_PREVIEW_SPEC);
      }
      case 'export': {
        const p = parseTaskArgs(DATA_EXPORT_SPEC, rest);
        return p ? await exportCommand(p, io) : help(DATA_EXPORT_SPEC);
      }
      default: {
        const near = closest(command, ['list', 'preview', 'export']);
        throw new UsageError(`unknown data command '${command}' (expected list, preview or export${near ? `; did you mean '${near}'?` : ''})`);
      }
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof RangeError) {
      io.stderr.write(`kindling data: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
