/**
 * Training configs: YAML files with the reference repo's keys, overridable from the command line.
 *
 *   const { values, sources } = loadConfig(PROCEDURAL_SCHEMA, { argv: ['--config', 'set.yaml', '--lr', '1e-4'] });
 *   values.lr            // 0.0001 (typed: number)
 *   sources.lr           // 'cli'
 *
 * Precedence (spec §4): command line > YAML file > schema default. Some defaults depend on other values
 * (the Dyck trainer's parser defaults differ from the algorithmic trainer's; the downstream model size,
 * context and batch follow the task) and are computed after the explicit values are known.
 *
 * Command line: `--key value`, `--key=value`; dashes and underscores are interchangeable
 * (`--max-steps` = `--max_steps`); booleans take `--flag`, `--no-flag` or `--flag true|false`; lists take
 * several values (`--weights_to_be_transferred attn ffn`), a comma list (`attn,ffn`) or a YAML flow
 * list (`[attn, ffn]`); `null` sets a nullable key to null. `--config <file>` names the YAML file. This is
 * the grammar of every `kindling` command: the argv goes through the same parser core
 * (src/util/args.ts, `scanArgs` over `schemaCommand(schema)`), and a schema's `--help` is that core's
 * `formatHelp`.
 *
 * Validation: unknown keys are errors (with the closest known key suggested), types are coerced where
 * unambiguous (a numeric string for a number key: PyYAML reads `5e-4` as a string) and checked, ranges
 * and choices enforced, and each schema checks its cross-field rules. Every error names the key and
 * where its value came from. Keys the reference accepts but that have no meaning here (wandb_*,
 * device, num_workers, …) are accepted and listed in `ignored`.
 *
 * Schemas: PROCEDURAL_SCHEMA (§4, procedural_pretraining/{algorithmic,dyck}.py), ALGORITHMIC_SCHEMA
 * (§6, downstream/algorithmic_tasks), C4_SCHEMA (§7.1), CODEPARROT_SCHEMA (§7.2), DEEPMIND_MATH_SCHEMA
 * (§7.3). Helpers derive the schedule, the model config and the run name from a loaded config.
 */
import * as fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { createDownstreamTask, DOWNSTREAM_FAMILIES, type DownstreamTask, isDownstreamTaskId, PAPER_TASK_IDS } from '../data/tasks/index.ts';
import { contextLength, isTaskName, MIN_TRAINING_LENGTH, modelVocabSize, resolveConfig, TASK_NAMES, type TaskName } from '../data/procedural/registry.ts';
import { HF_MODEL_SIZES, makeConfig, parseSize, type GPTConfig } from '../model/config.ts';
import { WEIGHT_DECAY_RULES } from '../model/hf_names.ts';
import { HF_KINDS, PROCEDURAL_KINDS, type HfKind, type ProceduralKind, type ScheduleSpec } from './schedule.ts';
import { COMPONENTS, EMB_INITS, parseWeightScales } from './transfer.ts';
import { checkRange as checkRangeCore, closest, coerceValue, scanArgs, UsageError, type CommandSpec, type OptionSpec, type Scanned } from '../util/args.ts';
import { inputFileProblem } from '../util/files.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type KeyType = 'int' | 'number' | 'string' | 'bool' | 'list';
export type Source = 'cli' | 'yaml' | 'default';
type Values = Record<string, unknown>;

/**
 * A configuration key: the option fields of src/util/args.ts (doc, required, nullable, choices, range,
 * aliases; the command line is built from them by `schemaCommand`) with a default that may be computed.
 */
export interface KeySpec extends Pick<OptionSpec, 'doc' | 'required' | 'nullable' | 'choices' | 'min' | 'max' | 'exclusiveMin' | 'aliases'> {
  type: KeyType;
  /** A value, or a function of the values resolved so far (explicit ones and earlier keys' defaults). */
  default?: unknown;
  /** Accepted for compatibility with the reference's files; no effect here. */
  ignored?: boolean;
}

export interface ConfigSchema {
  name: string;
  keys: Readonly<Record<string, KeySpec>>;
  /** Cross-field checks; throw ConfigError. */
  validate?: (values: Values, sources: Record<string, Source>) => void;
}

type BaseOf<T extends KeyType> = T extends 'int' | 'number' ? number : T extends 'string' ? string : T extends 'bool' ? boolean : string[];
type ValueOf<S> = S extends { type: infer T extends KeyType; nullable: true } ? BaseOf<T> | null : S extends { type: infer T extends KeyType } ? BaseOf<T> : never;
/** The typed values of a schema declared `as const`. */
export type ConfigValues<K> = { -readonly [P in keyof K]: ValueOf<K[P]> };

export interface LoadedConfig<V = Values> {
  values: V;
  sources: Record<string, Source>;
  /** The YAML file read, if any. */
  file: string | null;
  /** Keys given (YAML or CLI) that the schema accepts but ignores. */
  ignored: string[];
}

export interface LoadOptions {
  /** YAML file path (the CLI's `--config` wins over it). */
  file?: string;
  /** YAML text (instead of a file). */
  text?: string;
  /** Command-line arguments, e.g. process.argv.slice(2) minus the command. */
  argv?: readonly string[];
  /** Programmatic values at command-line precedence. */
  overrides?: Values;
}

// ------------------------------------------------------------------------------------------------
// Generic machinery

function canonicalKeys(schema: ConfigSchema): Map<string, string> {
  const m = new Map<string, string>();
  for (const [key, spec] of Object.entries(schema.keys)) {
    m.set(key, key);
    for (const a of spec.aliases ?? []) m.set(a, key);
  }
  return m;
}

function unknownKey(schema: ConfigSchema, key: string, where: string): ConfigError {
  const near = closestKey(schema, key);
  return new ConfigError(`${schema.name} config: unknown key "${key}" ${where}${near ? ` (did you mean "${near}"?)` : ''}`);
}

function describeSource(src: Source | 'override', key: string, file: string | null): string {
  if (src === 'cli') return `from --${key}`;
  if (src === 'override') return 'from the overrides';
  if (src === 'yaml') return file ? `from ${file}` : 'from the YAML config';
  return 'from the default';
}

/** Runs `fn`, turning the parser core's UsageErrors into ConfigErrors with the same message. */
function asConfigError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UsageError) throw new ConfigError(e.message);
    throw e;
  }
}

/** Converts a raw value (YAML value or CLI string) to the key's type (src/util/args.ts); throws a ConfigError. */
function coerce(key: string, spec: KeySpec, raw: unknown, where: string, fromCli: boolean): unknown {
  return asConfigError(() => coerceValue(key, spec, raw, { where, cli: fromCli }));
}

function checkRange(key: string, spec: KeySpec, v: unknown, where: string): void {
  asConfigError(() => checkRangeCore(key, spec, v, where));
}

/** The closest key of a schema (canonical names and aliases) to `key`, or null when none is close. */
export function closestKey(schema: ConfigSchema, key: string): string | null {
  return closest(key, canonicalKeys(schema).keys());
}

/**
 * Checks one raw value (e.g. from an experiment file) against a schema key: the key must exist (an
 * alias is mapped to its canonical name), the value is coerced and range/choice-checked. Errors are
 * ConfigErrors whose message starts with `path` (e.g. `arms[1].stage1.lr: must be >= 0, got -1`).
 */
export function checkValue(schema: ConfigSchema, rawKey: string, raw: unknown, path: string): { key: string; value: unknown } {
  const key = canonicalKeys(schema).get(rawKey);
  if (!key) {
    const near = closestKey(schema, rawKey);
    throw new ConfigError(`${path}: unknown ${schema.name} key "${rawKey}"${near ? ` (did you mean "${near}"?)` : ''}`);
  }
  const spec = schema.keys[key]!;
  if (spec.ignored) return { key, value: raw };
  try {
    const value = coerce(key, spec, raw, 'here', false);
    checkRange(key, spec, value, 'here');
    return { key, value };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // "key: message (here)" → "path: message"
    let msg = e.message.startsWith(`${key}: `) ? e.message.slice(key.length + 2) : e.message;
    if (msg.endsWith(' (here)')) msg = msg.slice(0, -' (here)'.length);
    throw new ConfigError(`${path}: ${msg}`);
  }
}

/**
 * A schema as a command spec of the parser core (src/util/args.ts): every key an option spelled as
 * the key (underscores, as in the YAML files), its aliases accepted, plus `--config FILE`. Reference-only
 * keys are accepted, hidden from help, and take a value only when one follows.
 */
export function schemaCommand(schema: ConfigSchema, extra: Partial<CommandSpec> = {}): CommandSpec {
  const options: Record<string, OptionSpec> = {
    config: { type: 'string', metavar: 'FILE', doc: 'YAML file with these keys (the command line wins over it, it wins over the defaults)' },
  };
  for (const [key, spec] of Object.entries(schema.keys)) {
    const computed = typeof spec.default === 'function';
    options[key] = {
      ...spec,
      default: computed ? undefined : spec.default,
      defaultDoc: computed ? ((spec.default as { doc?: string }).doc ?? '(derived)') : undefined,
      hidden: spec.ignored,
      optionalValue: spec.ignored,
    };
  }
  return { command: `kindling ${schema.name}`, ...extra, options };
}

export interface ParsedArgs {
  /** `--config` value, if given. */
  config: string | null;
  /** Canonical key → raw CLI value (string, string[] for lists, or boolean for bare flags). */
  values: Map<string, unknown>;
  /** Arguments that are not options. */
  positional: string[];
}

/**
 * Parses `--key value` style arguments against a schema (so it knows which keys are flags and lists),
 * with the parser core every command uses (`scanArgs`); values stay raw until `loadConfig` coerces them.
 */
export function parseArgs(schema: ConfigSchema, argv: readonly string[]): ParsedArgs {
  let scanned: Scanned;
  try {
    scanned = scanArgs(schemaCommand(schema), argv);
  } catch (e) {
    if (e instanceof UsageError && e.unknown) throw unknownKey(schema, e.unknown.name.replace(/-/g, '_'), 'on the command line');
    if (e instanceof UsageError) throw new ConfigError(e.message);
    throw e;
  }
  if (scanned.help) throw new ConfigError(`${schema.name} config: --help is for commands (schemaHelp prints the keys)`);
  const config = scanned.values.get('config');
  scanned.values.delete('config');
  return { config: typeof config === 'string' ? config : null, values: scanned.values, positional: scanned.positionals };
}

/** Reads a YAML mapping (text) into canonical keys → raw values. */
function readYaml(schema: ConfigSchema, text: string, file: string | null): Map<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${file ?? 'YAML config'}: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${file ?? 'YAML config'}: expected a mapping of keys to values`);
  const canon = canonicalKeys(schema);
  const out = new Map<string, unknown>();
  const given = new Map<string, string>();
  for (const [raw, value] of Object.entries(doc as Record<string, unknown>)) {
    const key = canon.get(raw);
    if (!key) throw unknownKey(schema, raw, `in ${file ?? 'the YAML config'}`);
    if (given.has(key)) throw new ConfigError(`${key}: given twice in ${file ?? 'the YAML config'} (as "${given.get(key)}" and "${raw}")`);
    given.set(key, raw);
    out.set(key, value);
  }
  return out;
}

/** Loads, merges (CLI > YAML > default), coerces and validates a config. */
export function loadConfig<V = Values>(schema: ConfigSchema, opts: LoadOptions = {}): LoadedConfig<V> {
  const cli = opts.argv ? parseArgs(schema, opts.argv) : { config: null, values: new Map<string, unknown>(), positional: [] };
  if (cli.positional.length) throw new ConfigError(`${schema.name} config: unexpected argument(s) ${cli.positional.map((x) => JSON.stringify(x)).join(' ')}`);
  const file = cli.config ?? opts.file ?? null;
  let yaml = new Map<string, unknown>();
  if (file !== null) {
    if (!fs.existsSync(file)) throw new ConfigError(`config file not found: ${file}`);
    const problem = inputFileProblem(file);
    if (problem) throw new ConfigError(`--config: ${file} ${problem}`);
    yaml = readYaml(schema, fs.readFileSync(file, 'utf8'), file);
  } else if (opts.text !== undefined) {
    yaml = readYaml(schema, opts.text, null);
  }
  const overrides = new Map<string, unknown>();
  const canon = canonicalKeys(schema);
  for (const [raw, v] of Object.entries(opts.overrides ?? {})) {
    const key = canon.get(raw);
    if (!key) throw unknownKey(schema, raw, 'in the overrides');
    overrides.set(key, v);
  }

  const values: Values = {};
  const sources: Record<string, Source> = {};
  const ignored: string[] = [];
  const where: Record<string, string> = {};
  for (const [key, spec] of Object.entries(schema.keys)) {
    let raw: unknown;
    let src: Source | 'override' | null = null;
    if (overrides.has(key)) [raw, src] = [overrides.get(key), 'override'];
    else if (cli.values.has(key)) [raw, src] = [cli.values.get(key), 'cli'];
    else if (yaml.has(key)) [raw, src] = [yaml.get(key), 'yaml'];
    if (src === null) continue;
    where[key] = describeSource(src, key, file);
    // Ignored (reference-only) keys keep whatever value they were given.
    values[key] = spec.ignored ? raw : coerce(key, spec, raw, where[key]!, src === 'cli');
    sources[key] = src === 'override' ? 'cli' : src;
    if (spec.ignored) ignored.push(key);
  }
  for (const [key, spec] of Object.entries(schema.keys)) {
    if (key in values) continue;
    if (spec.required) throw new ConfigError(`${schema.name} config: "${key}" is required (${spec.doc})`);
    const d = typeof spec.default === 'function' ? (spec.default as (v: Values) => unknown)(values) : spec.default;
    values[key] = d === undefined ? null : Array.isArray(d) ? [...d] : d;
    sources[key] = 'default';
    where[key] = 'default';
  }
  for (const [key, spec] of Object.entries(schema.keys)) {
    const v = values[key];
    if (spec.ignored) continue;
    if (v === null && !spec.nullable) throw new ConfigError(`${key}: null is not allowed (${where[key]})`);
    checkRange(key, spec, v, where[key]!);
  }
  schema.validate?.(values, sources);
  return { values: values as V, sources, file, ignored };
}

/** A short text table of every key: value, source. */
export function describeConfig(schema: ConfigSchema, loaded: LoadedConfig<unknown>): string {
  const v = loaded.values as Values;
  const rows = Object.keys(schema.keys)
    .filter((k) => !schema.keys[k]!.ignored)
    .map((k) => [k, JSON.stringify(v[k]), loaded.sources[k] ?? '']);
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.max(...rows.map((r) => r[1]!.length));
  return rows.map(([k, val, s]) => `${k!.padEnd(w0)}  ${val!.padEnd(w1)}  ${s}`).join('\n');
}

/** Markdown table of a schema's keys and defaults (for docs and `--help`). */
export function schemaHelp(schema: ConfigSchema): string {
  const lines = ['| key | type | default | meaning |', '| --- | --- | --- | --- |'];
  for (const [k, s] of Object.entries(schema.keys)) {
    if (s.ignored) continue;
    const d = s.required ? '(required)' : typeof s.default === 'function' ? ((s.default as { doc?: string }).doc ?? '(derived)') : JSON.stringify(s.default ?? null);
    const names = [k, ...(s.aliases ?? [])].map((n) => `\`${n}\``).join(' / ');
    lines.push(`| ${names} | ${s.type}${s.nullable ? ' or null' : ''} | ${d} | ${s.doc}${s.choices ? ` (${s.choices.join(', ')})` : ''} |`);
  }
  return lines.join('\n');
}

function ignoredKeys(...names: string[]): Record<string, KeySpec> {
  return Object.fromEntries(names.map((n) => [n, { type: 'string', doc: 'reference-only (ignored)', ignored: true, nullable: true } as KeySpec]));
}

/** Keys that may differ on resume: `names` and every reference-only (ignored) key of `keys`. */
function resumeMayChange(keys: Readonly<Record<string, KeySpec>>, names: readonly string[]): readonly string[] {
  return [...names, ...Object.keys(keys).filter((k) => keys[k]!.ignored)];
}

function checkSize(key: string, v: unknown): void {
  if (v === null) return;
  try {
    parseSize(HF_MODEL_SIZES[v as string] ?? (v as string));
  } catch (e) {
    throw new ConfigError(`${key}: ${(e as Error).message}`);
  }
}

// ------------------------------------------------------------------------------------------------
// §4: procedural pretraining (procedural_pretraining/cli.py → algorithmic.py or dyck.py)

const isDyck = (v: Values): boolean => v.task === 'dyck' || v.task === 'dyck_shuffle';
/** A computed default, with the text `schemaHelp` shows for it. */
function derived(fn: (v: Values) => unknown, doc: string): (v: Values) => unknown {
  return Object.assign(fn, { doc });
}

/** The algorithmic trainer's parser default, or the Dyck trainer's. */
const byTrainer = (algorithmic: unknown, dyck: unknown) =>
  derived((v) => (isDyck(v) ? dyck : algorithmic), `${JSON.stringify(algorithmic)} (Dyck: ${JSON.stringify(dyck)})`);

const PROCEDURAL_KEYS = {
  task: { type: 'string', required: true, choices: TASK_NAMES, doc: 'procedural task' },
  gpt2_size: { type: 'string', default: '2_4_16', doc: 'model size layers_heads_hidden' },
  vocab_size: { type: 'int', default: 21, min: 2, doc: 'V: content tokens 1..V-1, SEP = V, PAD = V+1 (model vocabulary V+2)' },
  seq_length: { type: 'int', default: byTrainer(20, 128), min: 1, doc: 'L (algorithmic) or the sequence length n (Dyck)' },
  k: { type: 'int', default: 16, min: 1, doc: 'Dyck: bracket types (model vocabulary 2k+1)' },
  p_open: { type: 'number', default: 0.5, min: 0, max: 1, doc: 'Dyck: probability of opening' },
  max_depth: { type: 'int', default: 16, min: 1, doc: 'Dyck shuffle: depth cap' },
  rule: { type: 'int', default: 110, min: 0, max: 255, doc: 'ECA: Wolfram rule' },
  rows: { type: 'int', default: 2, min: 2, doc: 'ECA: rows per sequence' },
  burn_in: { type: 'int', default: 0, min: 0, doc: 'ECA: rule applications before the first row' },
  loss_on_all: { type: 'bool', default: false, doc: 'WW: loss on every position' },
  shuffled: { type: 'bool', default: false, doc: 'train on the shuffled control (§2.11)' },
  batch_size: { type: 'int', default: 64, min: 1, doc: 'sequences per micro-batch' },
  gradient_accumulation_steps: { type: 'int', default: 1, min: 1, doc: 'micro-batches per optimizer step' },
  steps_per_epoch: { type: 'int', default: byTrainer(100, 1000), min: 1, doc: 'optimizer steps per epoch' },
  epochs: { type: 'int', default: byTrainer(10000, 1000), min: 1, doc: 'epochs' },
  max_steps: { type: 'int', nullable: true, default: byTrainer(20000, 1000000), min: 1, doc: 'stop after this many optimizer steps' },
  lr: { type: 'number', default: 5e-5, min: 0, doc: 'peak learning rate' },
  lr_schedule: { type: 'string', default: byTrainer('cosine', 'constant'), choices: PROCEDURAL_KINDS, doc: 'decay after warmup (floor 0.1)' },
  warmup_steps: { type: 'int', default: byTrainer(1000, 0), min: 0, doc: 'linear warmup steps' },
  weight_decay: { type: 'number', default: 0.01, min: 0, doc: 'AdamW decoupled weight decay' },
  weight_decay_rule: { type: 'string', default: 'all', choices: WEIGHT_DECAY_RULES, doc: 'which parameters decay (all = reference)' },
  max_grad_norm: { type: 'number', default: 1.0, min: 0, aliases: ['grad_clip'], doc: 'global gradient-norm clip (0: off)' },
  nonfinite: { type: 'string', default: 'stop', choices: ['stop', 'skip'], doc: 'a step with a NaN/Inf loss or gradient norm: stop the run (exit 1) or skip the step' },
  precision: { type: 'string', default: 'f32', choices: ['f32', 'f16', 'bf16'], doc: 'matmul operand storage: f32, f16 (half operands, f32 accumulation, dynamic loss scale; needs shader-f16) or bf16 (any adapter)' },
  dropout: { type: 'number', default: 0.1, min: 0, max: 0.999, doc: 'embd/attn/resid dropout (reference: 0.1)' },
  seed: { type: 'int', default: 42, min: 0, max: 0xffffffff, doc: 'seed for data and init' },
  save_dir: { type: 'string', default: 'runs/procedural', doc: 'run directories go under it' },
  run_name: { type: 'string', nullable: true, default: null, doc: 'run directory name (default {task}-{seq_length}-{size}-{max_steps}steps)' },
  save_every_steps: { type: 'int', default: byTrainer(10, 100), min: 1, doc: 'validate and checkpoint every N optimizer steps' },
  save_total_limit: { type: 'int', default: 1, min: 0, doc: 'checkpoints kept per prefix' },
  patience: { type: 'int', default: byTrainer(50, 1000001), min: 0, doc: 'validations without improvement before stopping (0: never)' },
  resume: { type: 'bool', default: false, doc: 'resume from the latest checkpoint of the run directory (its stored config must match, up to the keys docs/training.md lists)' },
  overwrite: { type: 'bool', default: false, doc: 'delete the checkpoints, best/ and metrics.jsonl already in the run directory and start over' },
  use_curriculum: { type: 'bool', default: false, doc: 'curriculum on the sequence length (§2.12)' },
  curriculum_start: { type: 'int', default: 2, min: 1, doc: 'curriculum: first length' },
  curriculum_step_size: { type: 'int', default: 2, min: 1, doc: 'curriculum: length increment' },
  curriculum_step_epochs: { type: 'int', default: 10, min: 1, doc: 'curriculum: epochs per increment (unused by the reference)' },
  curriculum_mastery_threshold: { type: 'number', default: 0.99, min: 0, max: 1, doc: 'curriculum: accuracy to advance' },
  ...ignoredKeys('device', 'num_workers', 'wandb_enable', 'wandb_project', 'wandb_name', 'resume_run_id'),
} as const satisfies Record<string, KeySpec>;

export type ProceduralConfig = ConfigValues<typeof PROCEDURAL_KEYS>;

export const PROCEDURAL_SCHEMA: ConfigSchema = {
  name: 'procedural',
  keys: PROCEDURAL_KEYS,
  validate: (v) => {
    checkSize('gpt2_size', v.gpt2_size);
    if (v.task === 'stack' && (v.vocab_size as number) < 3) throw new ConfigError('vocab_size: the stack task needs at least 3');
    if (v.use_curriculum && isDyck(v)) throw new ConfigError('use_curriculum: only the algorithmic tasks have a curriculum');
    if (v.resume && v.overwrite) throw new ConfigError('resume and overwrite exclude each other: resume continues the run directory, overwrite deletes it (give one of them)');
    // Lengths whose samples carry no loss position would train on nothing (validation accuracy 0/0).
    const min = MIN_TRAINING_LENGTH[v.task as TaskName];
    if (min && (v.seq_length as number) < min.min) {
      throw new ConfigError(`seq_length: the ${String(v.task)} task needs at least ${min.min} to have any loss position (${min.why}), got ${String(v.seq_length)}`);
    }
    if (min && v.use_curriculum && (v.curriculum_start as number) < min.min) {
      throw new ConfigError(`curriculum_start: the ${String(v.task)} task needs at least ${min.min} to have any loss position (${min.why}), got ${String(v.curriculum_start)}`);
    }
  },
};

/**
 * PROCEDURAL_SCHEMA keys that may differ between a checkpoint and the run that resumes it: where the
 * run lives, how often it saves, when it stops, and the reference-only keys. Any other difference is
 * a different run, and resume refuses it (src/train/rundir.ts).
 */
export const PROCEDURAL_RESUME_MAY_CHANGE: readonly string[] = resumeMayChange(PROCEDURAL_KEYS, ['max_steps', 'save_every_steps', 'save_total_limit', 'patience', 'resume', 'overwrite', 'save_dir', 'run_name']);

/** §4: total = epochs·steps_per_epoch (algorithmic trainer) or max_steps (Dyck; epochs·steps_per_epoch when null). */
export function proceduralTotalSteps(c: ProceduralConfig): number {
  if (isDyck(c as Values) && c.max_steps) return c.max_steps;
  return c.epochs * c.steps_per_epoch;
}

export function proceduralScheduleSpec(c: ProceduralConfig): ScheduleSpec {
  return { family: 'procedural', kind: c.lr_schedule as ProceduralKind, baseLr: c.lr, warmupSteps: c.warmup_steps, totalSteps: proceduralTotalSteps(c) };
}

/** The task's generator config from the run config (registry names). */
export function proceduralTaskConfig(c: ProceduralConfig) {
  const task = c.task as TaskName;
  if (!isTaskName(task)) throw new ConfigError(`task: unknown "${c.task}"`);
  const common = { seed: c.seed, shuffled: c.shuffled };
  switch (task) {
    case 'dyck':
    case 'dyck_shuffle':
      return resolveConfig(task, { ...common, k: c.k, length: c.seq_length, pOpen: c.p_open, maxDepth: c.max_depth });
    case 'eca':
      return resolveConfig(task, { ...common, seqLength: c.seq_length, rule: c.rule, rows: c.rows, burnIn: c.burn_in });
    case 'ww':
      return resolveConfig(task, { ...common, seqLength: c.seq_length, vocabSize: c.vocab_size, lossOnAll: c.loss_on_all });
    default:
      return resolveConfig(task, { ...common, seqLength: c.seq_length, vocabSize: c.vocab_size });
  }
}

/** The stage-1 model (§3.3): vocabulary and context from the task, tied, dropout as configured. */
export function proceduralModelConfig(c: ProceduralConfig): GPTConfig {
  const task = c.task as TaskName;
  const tc = proceduralTaskConfig(c);
  return makeConfig({ size: c.gpt2_size, vocabSize: modelVocabSize(task, tc), nPositions: contextLength(task, tc), tied: true, dropout: c.dropout });
}

/** `{task}-{seq_length}-{gpt2_size}-{max_steps}steps` (the reference's run directory), or run_name. */
export function proceduralRunName(c: ProceduralConfig): string {
  return c.run_name ?? `${c.task}-${c.seq_length}-${c.gpt2_size}-${c.max_steps}steps`;
}

// ------------------------------------------------------------------------------------------------
// §6: downstream algorithmic tasks (downstream/algorithmic_tasks/experiment_stream.py + task files)

/**
 * The downstream task named by a config's `task`. The task registry (src/data/tasks) is the single
 * source of the per-task defaults (model size, context, vocabulary, batch, eval cadence; §6.2–6.5).
 */
function downstreamTask(v: Values): DownstreamTask {
  const id = String(v.task);
  if (!isDownstreamTaskId(id)) throw new ConfigError(`task: "${id}" is not a downstream task id (name_N with name one of ${DOWNSTREAM_FAMILIES.join(', ')})`);
  try {
    return createDownstreamTask(id);
  } catch (e) {
    throw new ConfigError(`task: ${(e as Error).message}`);
  }
}
/** A default read from the task, documented with the paper's tasks' values. */
const byTask = (f: (t: DownstreamTask) => number) =>
  derived(
    (v) => f(downstreamTask(v)),
    PAPER_TASK_IDS.map((id) => `${id} ${f(createDownstreamTask(id))}`).join(', '),
  );

/** Components the reference's algorithmic ExperimentConfig accepts ([quirk]: no ln, attn+ln, heads). */
export const REFERENCE_ALGORITHMIC_COMPONENTS = ['attn', 'ffn', 'embed', 'everything'] as const;

const ALGORITHMIC_KEYS = {
  task: { type: 'string', default: 'condattendstream_30', doc: `task id name_N (src/data/tasks): ${PAPER_TASK_IDS.join(', ')}` },
  seed: { type: 'int', default: 42, min: 0, max: 0xffffffff, doc: 'test-set and init seed (the training stream uses 42 regardless [quirk])' },
  arch: { type: 'string', default: 'transformer', choices: ['transformer'], doc: 'architecture' },
  n_layer: { type: 'int', default: byTask((t) => t.defaults.nLayer), min: 1, doc: 'layers (task default)' },
  n_head: { type: 'int', default: byTask((t) => t.defaults.nHead), min: 1, doc: 'heads (task default)' },
  n_embd: { type: 'int', default: byTask((t) => t.defaults.nEmbd), min: 1, doc: 'hidden size (task default)' },
  n_positions: { type: 'int', default: byTask((t) => t.defaults.nPositions), min: 1, doc: 'context length (task default)' },
  vocab_size: { type: 'int', default: byTask((t) => t.vocabSize), min: 2, doc: 'vocabulary (task default)' },
  tie_emb: { type: 'bool', default: false, doc: 'tie lm_head to wte' },
  dropout: { type: 'number', default: 0.0, min: 0, max: 0.999, doc: 'embd/attn/resid dropout' },
  train_steps: { type: 'int', default: 250, min: 1, doc: 'epochs-equivalent: max_steps = train_steps·train_size/batch' },
  train_size: { type: 'int', default: 40000, min: 1, doc: 'nominal training-set size' },
  eval_size: { type: 'int', default: 4000, min: 1, doc: 'test sequences' },
  per_device_train_batch_size: { type: 'int', default: byTask((t) => t.defaults.batch), min: 1, aliases: ['batch_size'], doc: 'training batch (task default)' },
  per_device_eval_batch_size: { type: 'int', default: byTask((t) => t.defaults.batch), min: 1, doc: 'evaluation batch (task default)' },
  max_steps: {
    type: 'int',
    min: 1,
    default: derived((v) => Math.floor(((v.train_steps as number) * (v.train_size as number)) / (v.per_device_train_batch_size as number)), 'train_steps·train_size/batch'),
    doc: 'optimizer steps (default train_steps·train_size/batch)',
  },
  learning_rate: { type: 'number', default: 1e-3, min: 0, aliases: ['lr'], doc: 'peak learning rate' },
  lr_scheduler_type: { type: 'string', default: 'cosine', choices: HF_KINDS, doc: 'HF schedule' },
  warmup_steps: { type: 'int', default: 500, min: 0, doc: 'linear warmup steps' },
  weight_decay: { type: 'number', default: 0.001, min: 0, doc: 'AdamW weight decay (not biases/LayerNorm)' },
  max_grad_norm: { type: 'number', default: 1.0, min: 0, aliases: ['grad_clip'], doc: 'global gradient-norm clip' },
  precision: { type: 'string', default: 'f32', choices: ['f32', 'f16', 'bf16'], doc: 'matmul operand storage: f32, f16 (half operands, f32 accumulation, dynamic loss scale; needs shader-f16) or bf16 (any adapter); not stacked' },
  eval_steps: { type: 'int', default: byTask((t) => t.defaults.evalSteps), min: 1, doc: 'evaluate every N steps (task default)' },
  save_steps: { type: 'int', default: 600, min: 1, doc: 'checkpoint every N steps' },
  logging_steps: { type: 'int', default: 600, min: 1, doc: 'log every N steps' },
  save_total_limit: { type: 'int', default: 3, min: 0, doc: 'checkpoints kept' },
  output_dir: { type: 'string', default: 'runs/algorithmic', doc: 'run directories go under it' },
  pretrained_model_path: { type: 'string', nullable: true, default: null, doc: 'procedural checkpoint to transfer from' },
  weights_to_be_transferred: { type: 'list', default: [], choices: COMPONENTS, aliases: ['weights_to_transfer'], doc: 'components to transfer' },
  weights_to_be_trained: { type: 'list', default: ['everything'], choices: COMPONENTS, aliases: ['weights_to_train'], doc: 'components that train' },
  embedding_init_strategy: { type: 'string', default: 'average', choices: EMB_INITS, aliases: ['initialization_strategy'], doc: 'token-embedding init' },
  transfer_layers: { type: 'list', default: [], doc: 'blocks (0-based) whose transferred tensors are loaded; empty: every block' },
  transfer_scale: {
    type: 'list',
    default: [],
    doc: 'NAME=FACTOR or NAME[START:END]=FACTOR entries: after the transfer, multiply the initial weights whose names contain NAME (or their last axis from START to END) by FACTOR (e.g. h.1.attn.c_proj.weight=-1; not in the reference)',
  },
  all_components: { type: 'bool', default: false, doc: 'also accept ln, attn+ln, heads (the reference rejects them [quirk])' },
  ...ignoredKeys('wandb_project', 'calc_pca', 'device', 'eval_accumulation_steps', 'weight_frozen', 'eval_strategy', 'experiment_config_path', 'random_str'),
} as const satisfies Record<string, KeySpec>;

export type AlgorithmicConfig = ConfigValues<typeof ALGORITHMIC_KEYS>;

export const ALGORITHMIC_SCHEMA: ConfigSchema = {
  name: 'algorithmic',
  keys: ALGORITHMIC_KEYS,
  validate: (v) => {
    downstreamTask(v);
    if ((v.n_embd as number) % (v.n_head as number) !== 0) throw new ConfigError(`n_embd ${String(v.n_embd)} is not divisible by n_head ${String(v.n_head)}`);
    if (!v.all_components) {
      for (const key of ['weights_to_be_transferred', 'weights_to_be_trained'] as const) {
        for (const c of v[key] as string[]) {
          if (!(REFERENCE_ALGORITHMIC_COMPONENTS as readonly string[]).includes(c)) {
            throw new ConfigError(`${key}: "${c}" is not accepted by the algorithmic harness (valid: ${REFERENCE_ALGORITHMIC_COMPONENTS.join(', ')}); set all_components: true to allow it`);
          }
        }
      }
    }
    if ((v.weights_to_be_transferred as string[]).length > 0 && !v.pretrained_model_path) {
      throw new ConfigError('pretrained_model_path must be specified when transferring weights');
    }
    const layers = v.transfer_layers as string[];
    for (const l of layers) {
      if (!/^\d+$/.test(l) || Number(l) >= (v.n_layer as number)) {
        throw new ConfigError(`transfer_layers: "${l}" is not a block of the model (integers 0..${(v.n_layer as number) - 1})`);
      }
    }
    if (new Set(layers.map(Number)).size !== layers.length) throw new ConfigError(`transfer_layers: ${JSON.stringify(layers)} lists a block twice`);
    if (layers.length > 0 && (v.weights_to_be_transferred as string[]).length === 0) {
      throw new ConfigError('transfer_layers needs weights_to_be_transferred (the components whose tensors it restricts to those blocks)');
    }
    const scales = v.transfer_scale as string[];
    try {
      parseWeightScales(scales);
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
    if (scales.length > 0 && !v.pretrained_model_path) throw new ConfigError('transfer_scale needs a transfer (pretrained_model_path): it scales transferred weights');
  },
};

/**
 * ALGORITHMIC_SCHEMA keys that may differ between a checkpoint and the run that resumes it: save and
 * log cadence, evaluation batching, where runs live, the checkpoint the initial weights came from
 * (a resume replaces them by the checkpoint's), and the reference-only keys. max_steps may not: it is
 * the schedule's horizon.
 */
export const ALGORITHMIC_RESUME_MAY_CHANGE: readonly string[] = resumeMayChange(ALGORITHMIC_KEYS, ['save_steps', 'logging_steps', 'save_total_limit', 'per_device_eval_batch_size', 'output_dir', 'pretrained_model_path']);

export function algorithmicScheduleSpec(c: AlgorithmicConfig): ScheduleSpec {
  return { family: 'hf', kind: c.lr_scheduler_type as HfKind, baseLr: c.learning_rate, warmupSteps: c.warmup_steps, totalSteps: c.max_steps };
}

export function algorithmicModelConfig(c: AlgorithmicConfig): GPTConfig {
  return makeConfig({ size: `${c.n_layer}_${c.n_head}_${c.n_embd}`, vocabSize: c.vocab_size, nPositions: c.n_positions, tied: c.tie_emb, dropout: c.dropout });
}

// ------------------------------------------------------------------------------------------------
// §7.1: C4 (downstream/semantic/c4.py, HF Trainer)

const C4_KEYS = {
  model_name: { type: 'string', default: 'gpt2', choices: Object.keys(HF_MODEL_SIZES), doc: 'base GPT-2 variant (dimensions when gpt2_size is null)' },
  gpt2_size: { type: 'string', nullable: true, default: null, doc: 'overrides the model_name dimensions (layers_heads_hidden)' },
  pretrained_path: { type: 'string', nullable: true, default: null, doc: 'procedural checkpoint to transfer from' },
  reinit: { type: 'bool', default: true, doc: 'build a fresh model (false: the pretrained HF model, not supported here)' },
  weights_to_transfer: { type: 'list', default: ['everything'], choices: COMPONENTS, aliases: ['weights_to_be_transferred'], doc: 'components to transfer' },
  weights_to_train: { type: 'list', default: ['everything'], choices: COMPONENTS, aliases: ['weights_to_be_trained'], doc: 'components that train' },
  initialization_strategy: { type: 'string', default: 'retain', choices: EMB_INITS, aliases: ['embedding_init_strategy'], doc: 'token-embedding init (inert without embed/everything)' },
  n_positions: { type: 'int', default: 2048, min: 1, doc: 'context length (C4 sequences are 2048 tokens)' },
  dropout: { type: 'number', default: 0.1, min: 0, max: 0.999, doc: 'embd/attn/resid dropout' },
  gradient_accumulation_steps: { type: 'int', default: 8, min: 1, doc: 'micro-batches per step' },
  max_steps: { type: 'int', default: 10000, min: 1, doc: 'optimizer steps' },
  bsz: { type: 'int', default: 4, min: 1, aliases: ['batch_size'], doc: 'micro-batch (sequences)' },
  warmup_steps: { type: 'int', default: 0, min: 0, doc: 'linear warmup steps' },
  lr: { type: 'number', default: 5e-4, min: 0, aliases: ['learning_rate'], doc: 'peak learning rate' },
  min_lr_rate: { type: 'number', default: 0.1, min: 0, max: 1, doc: 'cosine floor as a fraction of lr' },
  weight_decay: { type: 'number', default: 0.0, min: 0, doc: 'AdamW weight decay (Trainer default 0)' },
  max_grad_norm: { type: 'number', default: 1.0, min: 0, aliases: ['grad_clip'], doc: 'global gradient-norm clip' },
  precision: { type: 'string', default: 'f32', choices: ['f32', 'f16', 'bf16'], doc: 'matmul operand storage: f32, f16 (half operands, f32 accumulation, dynamic loss scale; needs shader-f16) or bf16 (any adapter)' },
  logging_steps: { type: 'int', default: 100, min: 1, doc: 'log every N steps' },
  save_steps: { type: 'int', default: 2000, min: 1, doc: 'checkpoint every N steps' },
  eval_steps: { type: 'int', default: 500, min: 1, doc: 'evaluate every N steps' },
  output_dir: { type: 'string', default: 'output', doc: 'checkpoints and logs' },
  seed: { type: 'int', default: 3407, min: 0, max: 0xffffffff, doc: 'seed' },
  use_callback: { type: 'bool', default: false, doc: 'extra checkpoints at fixed steps (0..3900 every 100, then every 1000)' },
  use_c4_1m: { type: 'bool', default: false, doc: 'use the 1M-document subset' },
  eval_dataset_local_path: { type: 'string', nullable: true, default: null, doc: 'cached evaluation set' },
  download_eval_dataset: { type: 'bool', default: false, doc: 'download and cache the evaluation set' },
  overwrite_eval_cache: { type: 'bool', default: false, doc: 'rebuild the evaluation cache' },
  // Not in the reference (it streams allenai/c4 from the Hub): where the local shards are.
  train_data: { type: 'string', nullable: true, default: null, doc: 'training shards: a file, directory or glob of C4 JSON lines (gzipped or not) or Parquet (required to train)' },
  validation_data: { type: 'string', nullable: true, default: null, doc: 'validation shards, same forms (required to train)' },
  max_train_documents: { type: 'int', default: 100000, min: 1, doc: 'training documents read (the first N; spec §7.1: 100,000)' },
  max_eval_documents: { type: 'int', default: 1000, min: 1, doc: 'validation documents read (the first N; spec §7.1: 1000)' },
  tokenizer: { type: 'string', default: 'gpt2', doc: 'gpt2 (the GPT-2 BPE) or a path to a Hugging Face tokenizer.json; the model vocabulary is its vocabSize' },
  per_device_eval_batch_size: { type: 'int', default: 8, min: 1, doc: 'evaluation batch (sequences; HF default 8)' },
  save_total_limit: { type: 'int', nullable: true, default: null, min: 1, doc: 'step checkpoints kept (null: all)' },
  ...ignoredKeys('report_to', 'wandb_mode', 'wandb_project', 'wandb_name'),
} as const satisfies Record<string, KeySpec>;

export type C4Config = ConfigValues<typeof C4_KEYS>;

export const C4_SCHEMA: ConfigSchema = {
  name: 'c4',
  keys: C4_KEYS,
  validate: (v) => {
    checkSize('gpt2_size', v.gpt2_size);
    if (v.reinit === false) throw new ConfigError('reinit: false (continue from the pretrained HF model) is not supported; keep reinit: true');
    if (v.use_callback === true) throw new ConfigError('use_callback: the extra fixed-step checkpoints are not implemented; use save_steps');
    if (v.use_c4_1m === true) throw new ConfigError('use_c4_1m: point train_data at the shards you want and set max_train_documents instead');
    if (v.download_eval_dataset === true) throw new ConfigError('download_eval_dataset: nothing is downloaded; point validation_data at local C4 validation shards');
  },
};

/** C4_SCHEMA keys that may differ between a checkpoint and the run that resumes it. */
export const C4_RESUME_MAY_CHANGE: readonly string[] = resumeMayChange(C4_KEYS, ['save_steps', 'logging_steps', 'save_total_limit', 'per_device_eval_batch_size', 'output_dir', 'pretrained_path', 'eval_dataset_local_path', 'download_eval_dataset', 'overwrite_eval_cache']);

export function c4ScheduleSpec(c: C4Config): ScheduleSpec {
  return { family: 'hf', kind: 'cosine_with_min_lr', baseLr: c.lr, warmupSteps: c.warmup_steps, totalSteps: c.max_steps, minLrRate: c.min_lr_rate };
}

export function c4ModelConfig(c: C4Config, vocabSize = 50257): GPTConfig {
  return makeConfig({ size: c.gpt2_size ?? c.model_name, vocabSize, nPositions: c.n_positions, tied: true, dropout: c.dropout });
}

// ------------------------------------------------------------------------------------------------
// §7.2 / §7.3: CodeParrot and DeepMind-Math (accelerate scripts)

const ACCELERATE_COMMON = {
  gpt2_size: { type: 'string', default: '12_12_768', doc: 'model size layers_heads_hidden' },
  pretrained_model: { type: 'string', default: '', doc: 'procedural checkpoint to transfer from ("" = none)' },
  gradient_checkpointing: { type: 'bool', default: false, doc: 'recompute activations (no effect here)' },
  weights_to_transfer: { type: 'list', default: ['attn', 'ffn', 'ln'], choices: COMPONENTS, aliases: ['weights_to_be_transferred'], doc: 'components to transfer' },
  weights_to_be_trained: { type: 'list', default: ['everything'], choices: COMPONENTS, aliases: ['weights_to_train'], doc: 'components that train' },
  embedding_init_strategy: { type: 'string', default: 'average', choices: EMB_INITS, aliases: ['initialization_strategy'], doc: 'token-embedding init (inert without embed/everything)' },
  dropout: { type: 'number', default: 0.1, min: 0, max: 0.999, doc: 'embd/attn/resid dropout' },
  train_batch_size: { type: 'int', default: 8, min: 1, aliases: ['batch_size'], doc: 'sequences per device and step' },
  valid_batch_size: { type: 'int', default: 16, min: 1, doc: 'evaluation batch' },
  learning_rate: { type: 'number', default: 5e-5, min: 0, aliases: ['lr'], doc: 'peak learning rate' },
  weight_decay: { type: 'number', default: 0.01, min: 0, doc: 'AdamW weight decay (names containing "bias" exempt)' },
  max_grad_norm: { type: 'number', default: 1.0, min: 0, aliases: ['grad_clip'], doc: 'global gradient-norm clip' },
  precision: { type: 'string', default: 'f32', choices: ['f32', 'f16', 'bf16'], doc: 'matmul operand storage: f32, f16 (half operands, f32 accumulation, dynamic loss scale; needs shader-f16) or bf16 (any adapter)' },
  gradient_accumulation_steps: { type: 'int', default: 1, min: 1, doc: 'micro-batches per step' },
  lr_scheduler_type: { type: 'string', default: 'cosine', choices: HF_KINDS, doc: 'HF schedule' },
  num_warmup_steps: { type: 'int', default: 0, min: 0, aliases: ['warmup_steps'], doc: 'linear warmup steps' },
  max_train_steps: { type: 'int', default: 50000, min: 1, aliases: ['max_steps'], doc: 'optimizer steps (cosine horizon)' },
  max_eval_steps: { type: 'int', default: 100, min: -1, doc: 'evaluation batches beyond the first (-1: all)' },
  devices: { type: 'int', default: 1, min: 1, doc: 'data-parallel replicas emulated by accumulation (page budgets: 6 or 8)' },
  seed: { type: 'int', default: 42, min: 0, max: 0xffffffff, doc: 'seed' },
  mixed_precision: { type: 'string', default: 'fp16', choices: ['no', 'fp16', 'bf16'], doc: 'the reference\'s accelerate precision (not applied: the engine\'s is `precision`)' },
  output_dir: { type: 'string', nullable: true, default: null, doc: 'checkpoints and logs (required)' },
  logging_steps: { type: 'int', default: 100, min: 1, doc: 'log every N steps' },
  save_checkpoint_steps: { type: 'int', default: 5000, min: 1, doc: 'evaluate and checkpoint every N steps' },
  ...ignoredKeys('wandb_project', 'wandb_name', 'wandb_enable', 'note'),
} as const satisfies Record<string, KeySpec>;

const CODEPARROT_KEYS = {
  ...ACCELERATE_COMMON,
  pretrained_tokenizer: { type: 'string', default: 'codeparrot/codeparrot', doc: "the reference's Hub tokenizer id (not read: set `tokenizer`)" },
  tokenizer: { type: 'string', default: 'gpt2', doc: 'gpt2 (the GPT-2 BPE) or a path to a Hugging Face tokenizer.json (e.g. CodeParrot\'s); the model vocabulary is its vocabSize, the document separator its end-of-text' },
  dataset_name_train: { type: 'string', default: 'codeparrot/codeparrot-clean-train', doc: 'training data (Hub id or local path)' },
  dataset_name_valid: { type: 'string', default: 'codeparrot/codeparrot-clean-valid', doc: 'validation data (Hub id or local path)' },
  seq_length: { type: 'int', default: 1024, min: 1, doc: 'tokens per sequence (= n_positions)' },
  shuffle_buffer: { type: 'int', default: 1000, min: 1, doc: 'streaming shuffle buffer' },
  early_stopping_perplexity: { type: 'number', nullable: true, default: null, min: 0, doc: 'stop once eval perplexity reaches this' },
} as const satisfies Record<string, KeySpec>;

export type CodeparrotConfig = ConfigValues<typeof CODEPARROT_KEYS>;

const requireOutputDir = (v: Values): void => {
  checkSize('gpt2_size', v.gpt2_size);
  if (v.output_dir === null || v.output_dir === '') throw new ConfigError('output_dir is required (command line or config file)');
};

export const CODEPARROT_SCHEMA: ConfigSchema = { name: 'codeparrot', keys: CODEPARROT_KEYS, validate: requireOutputDir };

const DEEPMIND_MATH_KEYS = {
  ...ACCELERATE_COMMON,
  train_dir: { type: 'string', default: 'data/deepmind_math/mathematics_dataset-v1.0', doc: 'archive root with train-easy/medium/hard' },
  validation_dir: { type: 'string', default: 'data/deepmind_math/mathematics_dataset-v1.0/interpolate', doc: 'interpolation split' },
  test_dir: { type: 'string', default: 'data/deepmind_math/mathematics_dataset-v1.0/extrapolate', doc: 'extrapolation split' },
  seq_length: { type: 'int', default: 512, min: 1, doc: 'characters per packed sequence (= n_positions)' },
} as const satisfies Record<string, KeySpec>;

export type DeepmindMathConfig = ConfigValues<typeof DEEPMIND_MATH_KEYS>;

export const DEEPMIND_MATH_SCHEMA: ConfigSchema = { name: 'deepmind_math', keys: DEEPMIND_MATH_KEYS, validate: requireOutputDir };

/** CODEPARROT_SCHEMA / DEEPMIND_MATH_SCHEMA keys that may differ between a checkpoint and the run that resumes it. */
export const ACCELERATE_RESUME_MAY_CHANGE: readonly string[] = resumeMayChange(ACCELERATE_COMMON, ['logging_steps', 'valid_batch_size', 'output_dir', 'pretrained_model', 'gradient_checkpointing', 'mixed_precision']);

export function accelerateScheduleSpec(c: CodeparrotConfig | DeepmindMathConfig): ScheduleSpec {
  return { family: 'hf', kind: c.lr_scheduler_type as HfKind, baseLr: c.learning_rate, warmupSteps: c.num_warmup_steps, totalSteps: c.max_train_steps };
}

export function accelerateModelConfig(c: CodeparrotConfig | DeepmindMathConfig, vocabSize: number): GPTConfig {
  return makeConfig({ size: c.gpt2_size, vocabSize, nPositions: c.seq_length, tied: true, dropout: c.dropout });
}

export const SCHEMAS: Readonly<Record<string, ConfigSchema>> = {
  procedural: PROCEDURAL_SCHEMA,
  algorithmic: ALGORITHMIC_SCHEMA,
  c4: C4_SCHEMA,
  codeparrot: CODEPARROT_SCHEMA,
  deepmind_math: DEEPMIND_MATH_SCHEMA,
};
