/**
 * Experiment files: one YAML file describes arms (baseline, procedural, shuffled control, weight
 * mixtures), seeds and sweeps; `planExperiment` expands it into runs (arm × sweep point × seed), each
 * with a fully resolved stage-1 config (PROCEDURAL_SCHEMA) and stage-2 config (ALGORITHMIC_SCHEMA).
 *
 *   name: needle-paper
 *   task: condattendstream_30            # downstream task (an arm may override)
 *   seeds: [0, 1, 2]
 *   learned_threshold: 0.8               # stage-1 gate (closing accuracy for Dyck)
 *   stage1: {task: dyck, k: 2, ...}      # PROCEDURAL_SCHEMA keys: defaults of every procedural arm
 *   transfer: {components: [everything], embedding_init: average, trained: [everything], mixture: null}
 *                                        # + layers: [0] transfers only block 0's selected tensors
 *   stage2: {max_steps: 10000, ...}      # ALGORITHMIC_SCHEMA keys
 *   arms:
 *     - {name: none, role: baseline}
 *     - {name: dyck, role: procedural, stage1: {task: dyck}}
 *     - {name: dyck-shuffled, role: shuffled, stage1: {task: dyck}}
 *   sweeps: {stage1.lr: [1e-3, 3e-3], stage2.max_steps: [2000, 4000]}
 *
 * Precedence, lowest first: schema defaults < top-level block < the arm's block < the sweep value;
 * the run's seed sets both stages' `seed` unless a block sets it. Every error is an ExperimentError
 * whose message starts with the field's path (`arms[1].stage1.lr: must be >= 0, got -1`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import {
  ALGORITHMIC_SCHEMA,
  type AlgorithmicConfig,
  checkValue,
  ConfigError,
  type ConfigSchema,
  loadConfig,
  PROCEDURAL_SCHEMA,
  type ProceduralConfig,
} from '../train/config.ts';
import { COMPONENTS, EMB_INITS, parseWeightScales } from '../train/transfer.ts';
import { isSemanticTask, SEMANTIC_RUNNER_KEYS, SEMANTIC_SCHEMAS, SEMANTIC_TASKS, type SemanticConfig, type SemanticTask } from '../train/semantic.ts';
import type { ArmRole } from './types.ts';
import { levenshtein } from '../util/args.ts';
import { inputFileProblem } from '../util/files.ts';

export class ExperimentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExperimentError';
  }
}

export const ROLES: readonly ArmRole[] = ['baseline', 'procedural', 'shuffled'];
export const PRESETS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'presets');

type Values = Record<string, unknown>;

/** Where a mixture part's weights come from: an arm's stage 1 (same seed and sweep point) or a checkpoint directory. */
export type MixtureSource = { arm: string } | { checkpoint: string };
export type MixtureOrigin = 'attn' | 'ffn' | 'random';

export interface MixtureSpec {
  attn: MixtureSource;
  ffn: MixtureSource;
  /** Where ln_1/ln_2/ln_f come from (default: the ffn part, spec §5). */
  layer_norm: MixtureOrigin;
  /** Where wpe comes from (default random). */
  positions: MixtureOrigin;
  /** Where the token embeddings come from, with `embedding_init` (default random). */
  token_embeddings: MixtureOrigin;
}

export interface TransferSpec {
  components: string[];
  embedding_init: string;
  trained: string[];
  mixture: MixtureSpec | null;
  /** Blocks whose selected tensors are transferred (null: every block). */
  layers: number[] | null;
  /** Weight surgery after the transfer: parameter-name substring → factor (stage 2's `transfer_scale`; null: none). */
  scale: Record<string, number> | null;
}

export interface ArmDef {
  name: string;
  role: ArmRole;
  task: string;
  /** Stage-1 keys of the arm (merged over the top-level block); null for baselines and mixtures. */
  stage1: Values | null;
  stage2: Values;
  transfer: TransferSpec;
}

export interface Experiment {
  name: string;
  description: string;
  task: string;
  seeds: number[];
  learned_threshold: number;
  /** Top-level blocks (canonical keys, coerced values). */
  stage1: Values;
  stage2: Values;
  transfer: TransferSpec;
  arms: ArmDef[];
  /** [`stage1.key` | `stage2.key` | `transfer.key`, values] in file order. */
  sweeps: [string, unknown[]][];
}

/** A stage-1 training that one or more runs need: its resolved config and cache key. */
export interface Stage1Plan {
  /** The arm whose settings these are (for mixtures: the referenced arm). */
  arm: string;
  config: ProceduralConfig;
  /** Hash of the settings (seed included): the cache directory name under DIR/stage1/. */
  key: string;
  shuffled: boolean;
}

export type MixturePartPlan = { stage1: Stage1Plan } | { checkpoint: string };

export interface PlannedRun {
  /** Position in the plan (sharding takes index % n == i). */
  index: number;
  /** Arm name with the sweep point, e.g. `dyck` or `dyck[stage1.lr=0.003]`. */
  arm: string;
  /** The arm's name without the point. */
  baseArm: string;
  role: ArmRole;
  task: string;
  seed: number;
  point: Values;
  /** Run directory relative to the experiment directory: `runs/<arm>/seed-<s>`. */
  dir: string;
  stage1: Stage1Plan | null;
  mixture: { attn: MixturePartPlan; ffn: MixturePartPlan; spec: MixtureSpec } | null;
  /** Stage-2 config of an algorithmic task (null for a semantic one); `pretrained_model_path` is a placeholder until stage 1 exists. */
  stage2: AlgorithmicConfig | null;
  /** Stage-2 config of a semantic task (`c4`, `codeparrot`, `deepmind_math`; null otherwise); its pretrained path is a placeholder until stage 1 exists. */
  semantic: SemanticConfig | null;
  transfer: TransferSpec;
}

export const STAGE1_PLACEHOLDER = '<stage-1 checkpoint>';

const TOP_KEYS = ['name', 'description', 'task', 'seeds', 'learned_threshold', 'stage1', 'transfer', 'stage2', 'arms', 'sweeps'] as const;
const ARM_KEYS = ['name', 'role', 'task', 'stage1', 'stage2', 'transfer'] as const;
const TRANSFER_KEYS = ['components', 'embedding_init', 'trained', 'layers', 'mixture', 'scale'] as const;
const MIXTURE_KEYS = ['attn', 'ffn', 'layer_norm', 'positions', 'token_embeddings'] as const;
/** Keys the runner sets itself (with what to use instead). */
const STAGE1_RESERVED: Record<string, string> = {
  save_dir: 'the runner caches stage 1 under DIR/stage1/',
  run_name: 'the runner names stage-1 directories by the hash of their settings',
  resume: 'use `kindling experiment --resume`',
  overwrite: 'the runner resumes stage 1; start an experiment over in a new --out',
};
const STAGE2_RESERVED: Record<string, string> = {
  task: 'set `task` at the top level or on the arm',
  output_dir: 'runs go under DIR/runs/',
  pretrained_model_path: 'the runner passes the arm\'s stage-1 checkpoint (or use transfer.mixture with checkpoint paths)',
  weights_to_be_transferred: 'use transfer.components',
  weights_to_be_trained: 'use transfer.trained',
  embedding_init_strategy: 'use transfer.embedding_init',
  transfer_layers: 'use transfer.layers',
  transfer_scale: 'use transfer.scale',
};


function unknown(path: string, key: string, known: readonly string[]): ExperimentError {
  let best = '';
  let bestD = Infinity;
  for (const k of known) {
    const d = levenshtein(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  const hint = bestD <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best}"?)` : known.length <= 12 ? ` (known: ${known.join(', ')})` : '';
  return new ExperimentError(`${path ? `${path}.` : ''}${key}: unknown key${hint}`);
}

function isMapping(x: unknown): x is Values {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function mapping(x: unknown, path: string): Values {
  if (x === undefined || x === null) return {};
  if (!isMapping(x)) throw new ExperimentError(`${path}: expected a mapping of keys to values, got ${JSON.stringify(x)}`);
  return x;
}

function checkKeys(obj: Values, known: readonly string[], path: string): void {
  for (const k of Object.keys(obj)) if (!known.includes(k)) throw unknown(path, k, known);
}

function str(x: unknown, path: string, opts: { choices?: readonly string[]; pattern?: RegExp; patternDoc?: string } = {}): string {
  if (typeof x !== 'string' || x === '') throw new ExperimentError(`${path}: expected a non-empty string, got ${JSON.stringify(x)}`);
  if (opts.choices && !opts.choices.includes(x)) throw new ExperimentError(`${path}: "${x}" is not one of ${opts.choices.join(', ')}`);
  if (opts.pattern && !opts.pattern.test(x)) throw new ExperimentError(`${path}: "${x}" ${opts.patternDoc ?? `does not match ${opts.pattern}`}`);
  return x;
}

/** A non-empty list of distinct block indices (integers ≥ 0), or null. */
function layerList(x: unknown, path: string): number[] | null {
  if (x === null) return null;
  const items = typeof x === 'number' ? [x] : x;
  if (!Array.isArray(items) || items.length === 0) throw new ExperimentError(`${path}: expected a non-empty list of block indices (integers from 0), got ${JSON.stringify(x)}`);
  items.forEach((v, i) => {
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new ExperimentError(`${path}[${i}]: expected a block index (an integer from 0), got ${JSON.stringify(v)}`);
  });
  if (new Set(items).size !== items.length) throw new ExperimentError(`${path}: ${JSON.stringify(items)} lists a block twice`);
  return items as number[];
}

/** transfer.scale: {NAME: FACTOR, ...} (parameter-name substrings, optionally NAME[START:END]; finite numbers), or null. */
function scaleMap(x: unknown, path: string): Record<string, number> | null {
  if (x === null) return null;
  const m = mapping(x, path);
  const entries = Object.entries(m);
  if (entries.length === 0) throw new ExperimentError(`${path}: expected a mapping of parameter-name substrings to factors, e.g. {h.1.attn.c_proj.weight: -1}`);
  for (const [k, v] of entries) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ExperimentError(`${path}.${k}: expected a finite number, got ${JSON.stringify(v)}`);
    try {
      parseWeightScales([`${k}=${v}`]);
    } catch (e) {
      throw new ExperimentError(`${path}: ${(e as Error).message.replace(/^transfer_scale: /, '')}`);
    }
  }
  return m as Record<string, number>;
}

function strList(x: unknown, path: string, choices: readonly string[]): string[] {
  const items = typeof x === 'string' ? [x] : x;
  if (!Array.isArray(items) || items.length === 0) throw new ExperimentError(`${path}: expected a non-empty list, got ${JSON.stringify(x)}`);
  return items.map((v, i) => str(v, `${path}[${i}]`, { choices }));
}

/** A stage block: canonical keys, coerced and range-checked values; reserved keys rejected. */
function stageBlock(schema: ConfigSchema, raw: unknown, path: string, reserved: Record<string, string>): Values {
  const block = mapping(raw, path);
  const out: Values = {};
  for (const [k, v] of Object.entries(block)) {
    const { key, value } = wrap(() => checkValue(schema, k, v, `${path}.${k}`));
    if (reserved[key]) throw new ExperimentError(`${path}.${k}: set by the runner (${reserved[key]})`);
    if (key in out) throw new ExperimentError(`${path}.${k}: "${key}" given twice (aliases)`);
    out[key] = value;
  }
  return out;
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ConfigError) throw new ExperimentError(e.message);
    throw e;
  }
}

const DEFAULT_TRANSFER: TransferSpec = { components: ['everything'], embedding_init: 'average', trained: ['everything'], mixture: null, layers: null, scale: null };
/** Semantic arms (spec §7): attention, MLP and LayerNorm transfer; embeddings (token and position) fresh. */
const SEMANTIC_TRANSFER: TransferSpec = { components: ['attn', 'ffn', 'ln'], embedding_init: 'average', trained: ['everything'], mixture: null, layers: null, scale: null };

/** The stage-2 schema of a task and the keys the runner sets in it. */
function stage2Schema(task: string | null): { schema: ConfigSchema; reserved: Record<string, string> } {
  if (task === null || !isSemanticTask(task)) return { schema: ALGORITHMIC_SCHEMA, reserved: STAGE2_RESERVED };
  const k = SEMANTIC_RUNNER_KEYS[task];
  return {
    schema: SEMANTIC_SCHEMAS[task],
    reserved: {
      [k.pretrained]: "the runner passes the arm's stage-1 checkpoint",
      [k.transfer]: 'use transfer.components',
      [k.trained]: 'use transfer.trained',
      [k.embInit]: 'use transfer.embedding_init',
      [k.output]: 'runs go under DIR/runs/',
    },
  };
}

function mixtureSource(x: unknown, path: string): MixtureSource {
  if (isMapping(x)) {
    checkKeys(x, ['arm', 'checkpoint'], path);
    if ('arm' in x === 'checkpoint' in x) throw new ExperimentError(`${path}: give exactly one of arm, checkpoint`);
    return 'arm' in x ? { arm: str(x.arm, `${path}.arm`) } : { checkpoint: str(x.checkpoint, `${path}.checkpoint`) };
  }
  const s = str(x, path);
  // A bare string is an arm name unless it looks like a path.
  return s.includes('/') ? { checkpoint: s } : { arm: s };
}

/** A transfer block over `base` (partial blocks override key by key). */
function transferBlock(raw: unknown, path: string, base: TransferSpec): TransferSpec {
  const t = mapping(raw, path);
  checkKeys(t, TRANSFER_KEYS, path);
  const out: TransferSpec = { ...base };
  if ('components' in t) out.components = strList(t.components, `${path}.components`, COMPONENTS);
  if ('embedding_init' in t) out.embedding_init = str(t.embedding_init, `${path}.embedding_init`, { choices: EMB_INITS });
  if ('trained' in t) out.trained = strList(t.trained, `${path}.trained`, COMPONENTS);
  if ('layers' in t) out.layers = layerList(t.layers, `${path}.layers`);
  if ('scale' in t) out.scale = scaleMap(t.scale, `${path}.scale`);
  if ('mixture' in t) {
    if (t.mixture === null) out.mixture = null;
    else {
      const m = mapping(t.mixture, `${path}.mixture`);
      checkKeys(m, MIXTURE_KEYS, `${path}.mixture`);
      for (const k of ['attn', 'ffn'] as const) if (!(k in m)) throw new ExperimentError(`${path}.mixture.${k}: required (an arm name or {checkpoint: DIR})`);
      const origin = (k: string, d: MixtureOrigin): MixtureOrigin =>
        k in m ? (str(m[k], `${path}.mixture.${k}`, { choices: ['attn', 'ffn', 'random'] }) as MixtureOrigin) : d;
      out.mixture = {
        attn: mixtureSource(m.attn, `${path}.mixture.attn`),
        ffn: mixtureSource(m.ffn, `${path}.mixture.ffn`),
        layer_norm: origin('layer_norm', 'ffn'),
        positions: origin('positions', 'random'),
        token_embeddings: origin('token_embeddings', 'random'),
      };
    }
  }
  return out;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** Parses and validates an experiment (YAML text). `source` names the file in messages. */
export function parseExperiment(text: string, source = 'experiment'): Experiment {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ExperimentError(`${source}: ${(e as Error).message}`);
  }
  const top = mapping(doc, source);
  checkKeys(top, TOP_KEYS, '');
  const name = str(top.name, 'name', { pattern: NAME, patternDoc: 'must be letters, digits, . _ + - (it names directories)' });
  const description = top.description === undefined ? '' : str(top.description, 'description');
  const topTask = top.task === undefined ? null : str(top.task, 'task');
  const seedsRaw = top.seeds ?? [0];
  if (!Array.isArray(seedsRaw) || seedsRaw.length === 0) throw new ExperimentError(`seeds: expected a non-empty list of integers, got ${JSON.stringify(seedsRaw)}`);
  const seeds = seedsRaw.map((s, i) => {
    if (!Number.isSafeInteger(s) || (s as number) < 0 || (s as number) > 0xffffffff) throw new ExperimentError(`seeds[${i}]: expected an integer in [0, 2^32), got ${JSON.stringify(s)}`);
    return s as number;
  });
  if (new Set(seeds).size !== seeds.length) throw new ExperimentError(`seeds: ${JSON.stringify(seeds)} lists a seed twice`);
  let learned = 0.8;
  if (top.learned_threshold !== undefined) {
    const v = top.learned_threshold;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new ExperimentError(`learned_threshold: expected a number in [0, 1], got ${JSON.stringify(v)}`);
    learned = v;
  }
  const stage1 = stageBlock(PROCEDURAL_SCHEMA, top.stage1, 'stage1', STAGE1_RESERVED);
  const semantic = topTask !== null && isSemanticTask(topTask);
  const s2 = stage2Schema(topTask);
  const stage2 = stageBlock(s2.schema, top.stage2, 'stage2', s2.reserved);
  const transfer = transferBlock(top.transfer, 'transfer', semantic ? SEMANTIC_TRANSFER : DEFAULT_TRANSFER);

  if (!Array.isArray(top.arms) || top.arms.length === 0) throw new ExperimentError('arms: expected a non-empty list of arms ({name, role, ...})');
  const arms: ArmDef[] = top.arms.map((raw, i) => {
    const path = `arms[${i}]`;
    const a = mapping(raw, path);
    checkKeys(a, ARM_KEYS, path);
    const armName = str(a.name, `${path}.name`, { pattern: NAME, patternDoc: 'must be letters, digits, . _ + - (it names directories)' });
    const role = str(a.role, `${path}.role`, { choices: ROLES }) as ArmRole;
    const task = a.task === undefined ? topTask : str(a.task, `${path}.task`);
    if (task === null) throw new ExperimentError(`${path}.task: no downstream task (set \`task\` at the top level or on the arm)`);
    if (isSemanticTask(task) !== semantic || (semantic && task !== topTask)) {
      throw new ExperimentError(`${path}.task: "${task}": an experiment on a semantic corpus (${SEMANTIC_TASKS.join(', ')}) sets it once at the top level, and its arms all train on it`);
    }
    const armTransfer = transferBlock(a.transfer, `${path}.transfer`, transfer);
    if (semantic && armTransfer.layers) throw new ExperimentError(`${path}.transfer.layers: implemented for algorithmic tasks only`);
    if (semantic && armTransfer.scale) throw new ExperimentError(`${path}.transfer.scale: implemented for algorithmic tasks only`);
    let armStage1: Values | null = stageBlock(PROCEDURAL_SCHEMA, a.stage1, `${path}.stage1`, STAGE1_RESERVED);
    if (role === 'baseline') {
      if (a.stage1 !== undefined) throw new ExperimentError(`${path}.stage1: a baseline arm has no stage 1`);
      if (a.transfer !== undefined) throw new ExperimentError(`${path}.transfer: a baseline arm transfers nothing`);
      armStage1 = null;
    } else if (armTransfer.mixture) {
      if (armTransfer.layers) throw new ExperimentError(`${path}.transfer.layers: not implemented for weight mixtures (their parts take every block)`);
      if (semantic) throw new ExperimentError(`${path}.transfer.mixture: weight mixtures are implemented for algorithmic tasks only`);
      if (role !== 'procedural') throw new ExperimentError(`${path}.role: a weight mixture arm has role procedural (its parts name their own stage 1)`);
      if (a.stage1 !== undefined) throw new ExperimentError(`${path}.stage1: a weight-mixture arm takes its weights from transfer.mixture's parts, not its own stage 1`);
      armStage1 = null;
    } else {
      const merged = { ...stage1, ...armStage1 };
      if (!('task' in merged)) throw new ExperimentError(`${path}.stage1.task: required (the procedural task; or set stage1.task at the top level)`);
      if (role === 'shuffled') {
        if (armStage1.shuffled === false) throw new ExperimentError(`${path}.stage1.shuffled: a shuffled arm trains on the shuffled control; remove the key`);
        armStage1.shuffled = true;
      } else if (merged.shuffled === true) {
        throw new ExperimentError(`${path}.stage1.shuffled: true trains the shuffled control; give the arm role: shuffled`);
      }
    }
    return { name: armName, role, task, stage1: armStage1, stage2: stageBlock(s2.schema, a.stage2, `${path}.stage2`, s2.reserved), transfer: armTransfer };
  });
  const names = new Set<string>();
  arms.forEach((a, i) => {
    if (names.has(a.name)) throw new ExperimentError(`arms[${i}].name: "${a.name}" is used by an earlier arm`);
    names.add(a.name);
  });
  arms.forEach((a, i) => {
    const m = a.transfer.mixture;
    if (!m) return;
    for (const part of ['attn', 'ffn'] as const) {
      const src = m[part];
      if ('arm' in src) {
        const ref = arms.find((x) => x.name === src.arm);
        const path = `arms[${i}].transfer.mixture.${part}`;
        if (!ref) throw new ExperimentError(`${path}: no arm named "${src.arm}" (arms: ${arms.map((x) => x.name).join(', ')})`);
        if (!ref.stage1) throw new ExperimentError(`${path}: arm "${src.arm}" has no stage 1 of its own`);
      }
    }
  });

  const sweeps: [string, unknown[]][] = [];
  const sw = mapping(top.sweeps, 'sweeps');
  for (const [k, list] of Object.entries(sw)) {
    const path = `sweeps.${k}`;
    const dot = k.indexOf('.');
    const stage = dot > 0 ? k.slice(0, dot) : '';
    const key = k.slice(dot + 1);
    if (!['stage1', 'stage2', 'transfer'].includes(stage)) throw new ExperimentError(`${path}: sweep keys are stage1.<key>, stage2.<key> or transfer.<key>`);
    if (!Array.isArray(list) || list.length === 0) throw new ExperimentError(`${path}: expected a non-empty list of values`);
    let canon = key;
    const values = list.map((v, j) => {
      if (stage === 'transfer') {
        if (key === 'mixture' || key === 'scale' || !(TRANSFER_KEYS as readonly string[]).includes(key)) throw unknown('sweeps.transfer', key, TRANSFER_KEYS.filter((x) => x !== 'mixture' && x !== 'scale'));
        if (key === 'layers') {
          if (semantic) throw new ExperimentError(`${path}: transfer.layers is implemented for algorithmic tasks only`);
          return layerList(v, `${path}[${j}]`);
        }
        return key === 'embedding_init' ? str(v, `${path}[${j}]`, { choices: EMB_INITS }) : strList(v, `${path}[${j}]`, COMPONENTS);
      }
      const schema = stage === 'stage1' ? PROCEDURAL_SCHEMA : s2.schema;
      const known = Object.entries(schema.keys).flatMap(([n, spec]) => [n, ...(spec.aliases ?? [])]);
      if (!known.includes(key)) throw unknown(`sweeps.${stage}`, key, known);
      const r = wrap(() => checkValue(schema, key, v, `${path}[${j}]`));
      const reserved = stage === 'stage1' ? STAGE1_RESERVED : s2.reserved;
      if (reserved[r.key]) throw new ExperimentError(`${path}: set by the runner (${reserved[r.key]})`);
      canon = r.key;
      return r.value;
    });
    const full = `${stage}.${canon}`;
    if (sweeps.some(([s]) => s === full)) throw new ExperimentError(`${path}: "${full}" swept twice (aliases)`);
    if (new Set(values.map((v) => JSON.stringify(v))).size !== values.length) throw new ExperimentError(`${path}: a value is listed twice`);
    sweeps.push([full, values]);
  }
  const exp: Experiment = { name, description, task: topTask ?? arms[0]!.task, seeds, learned_threshold: learned, stage1, stage2, transfer, arms, sweeps };
  planExperiment(exp); // cross-field checks of every resolved config, with the arm's path
  return exp;
}

/** Loads an experiment from a YAML file, or a preset by name (`quick`, `paper`). */
export function loadExperiment(fileOrPreset: string): { experiment: Experiment; file: string; text: string } {
  let file = fileOrPreset;
  if (!existsSync(file)) {
    const preset = join(PRESETS_DIR, `${fileOrPreset}.yaml`);
    if (!/[/\\]|\.ya?ml$/.test(fileOrPreset) && existsSync(preset)) file = preset;
    else throw new ExperimentError(`${fileOrPreset}: no such file, and not a preset (presets: ${listPresets().join(', ')})`);
  }
  const problem = inputFileProblem(file);
  if (problem) throw new ExperimentError(`${fileOrPreset} ${problem} (an experiment YAML file, or a preset: ${listPresets().join(', ')})`);
  const text = readFileSync(file, 'utf8');
  return { experiment: parseExperiment(text, basename(file)), file, text };
}

export function listPresets(): string[] {
  try {
    return ['quick', 'paper', 'semantic-quick'].filter((p) => existsSync(join(PRESETS_DIR, `${p}.yaml`)));
  } catch {
    return [];
  }
}

/** The sweep grid: every combination, first key outermost; [{}] without sweeps. */
export function sweepPoints(sweeps: readonly [string, unknown[]][]): Values[] {
  let points: Values[] = [{}];
  for (const [k, values] of sweeps) points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  return points;
}

function fmtValue(v: unknown): string {
  return Array.isArray(v) ? v.join('+') : String(v);
}

/** `name` or `name[k=v,k2=v2]`. */
export function armLabel(name: string, point: Values): string {
  const ks = Object.keys(point);
  return ks.length ? `${name}[${ks.map((k) => `${k}=${fmtValue(point[k])}`).join(',')}]` : name;
}

/** A directory name for an arm label: `dyck[stage1.lr=0.003]` → `dyck@stage1.lr=0.003` (no shell glob characters). */
export function armDirName(label: string): string {
  return label.replace(/\[/, '@').replace(/\]$/, '').replace(/[^A-Za-z0-9._+=,@-]/g, '_');
}

/** Stable JSON (sorted keys). */
export function stableJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(stableJson).join(',')}]`;
  if (isMapping(x)) return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${stableJson(x[k])}`).join(',')}}`;
  return JSON.stringify(x) ?? 'null';
}

/** The stage-1 settings that define a checkpoint (runner-controlled and ignored keys removed). */
export function stage1Settings(c: ProceduralConfig): Values {
  const out: Values = {};
  for (const [k, spec] of Object.entries(PROCEDURAL_SCHEMA.keys)) {
    if (spec.ignored || k in STAGE1_RESERVED) continue;
    out[k] = (c as Values)[k];
  }
  return out;
}

export function stage1Key(c: ProceduralConfig): string {
  const s = stage1Settings(c);
  return `${String(s.task)}-${createHash('sha256').update(stableJson(s)).digest('hex').slice(0, 12)}`;
}

function sub(point: Values, stage: string): Values {
  const out: Values = {};
  for (const [k, v] of Object.entries(point)) if (k.startsWith(`${stage}.`)) out[k.slice(stage.length + 1)] = v;
  return out;
}

function resolve<V>(schema: ConfigSchema, values: Values, path: string): V {
  try {
    return loadConfig<V>(schema, { overrides: values }).values;
  } catch (e) {
    if (e instanceof ConfigError) throw new ExperimentError(`${path}: ${e.message.replace(/ \(from the overrides\)/g, '')}`);
    throw e;
  }
}

/** A semantic run's stage-2 config: the block's values plus what the runner sets (transfer, output). */
function semanticStage2(task: SemanticTask, values: Values, transferring: boolean, transfer: TransferSpec, dir: string, path: string): SemanticConfig {
  const k = SEMANTIC_RUNNER_KEYS[task];
  const v: Values = {
    ...values,
    [k.pretrained]: transferring ? STAGE1_PLACEHOLDER : task === 'c4' ? null : '',
    [k.transfer]: transfer.components,
    [k.trained]: transfer.trained,
    [k.embInit]: transfer.embedding_init,
    [k.output]: dir,
  };
  const resolved = resolve<Values>(SEMANTIC_SCHEMAS[task], v, path);
  if (task === 'c4') {
    for (const key of ['train_data', 'validation_data']) if (resolved[key] === null) throw new ExperimentError(`${path}: stage2.${key} is required (the C4 shards to ${key === 'train_data' ? 'train on' : 'validate on'})`);
  }
  return { task, values: resolved } as SemanticConfig;
}

/** Expands arms × sweep points × seeds into runs with resolved configs. */
export function planExperiment(exp: Experiment): PlannedRun[] {
  const runs: PlannedRun[] = [];
  const points = sweepPoints(exp.sweeps);
  const stage1For = (arm: ArmDef, armIndex: number, point: Values, seed: number): Stage1Plan => {
    const values = { seed, ...exp.stage1, ...arm.stage1, ...sub(point, 'stage1') };
    const config = resolve<ProceduralConfig>(PROCEDURAL_SCHEMA, values, `arms[${armIndex}] (${arm.name}) stage 1`);
    return { arm: arm.name, config, key: stage1Key(config), shuffled: config.shuffled };
  };
  exp.arms.forEach((arm, ai) => {
    const seen = new Set<string>();
    for (const full of points) {
      // Keys that do not apply to the arm are dropped (a baseline has no stage 1 and no transfer).
      const point: Values = {};
      for (const [k, v] of Object.entries(full)) {
        if (arm.role === 'baseline' && !k.startsWith('stage2.')) continue;
        if (arm.transfer.mixture && k === 'transfer.layers') continue; // a mixture's parts take every block
        point[k] = v;
      }
      const label = armLabel(arm.name, point);
      if (seen.has(label)) continue;
      seen.add(label);
      const transfer: TransferSpec = { ...arm.transfer, ...(sub(point, 'transfer') as Partial<TransferSpec>) };
      for (const seed of exp.seeds) {
        const stage1 = arm.stage1 ? stage1For(arm, ai, point, seed) : null;
        let mixture: PlannedRun['mixture'] = null;
        if (arm.transfer.mixture) {
          const m = arm.transfer.mixture;
          const part = (src: MixtureSource): MixturePartPlan => {
            if ('checkpoint' in src) return { checkpoint: src.checkpoint };
            const idx = exp.arms.findIndex((x) => x.name === src.arm);
            return { stage1: stage1For(exp.arms[idx]!, idx, point, seed) };
          };
          mixture = { attn: part(m.attn), ffn: part(m.ffn), spec: m };
        }
        const transferring = arm.role !== 'baseline';
        const dir = join('runs', armDirName(label), `seed-${seed}`);
        let stage2: AlgorithmicConfig | null = null;
        let semantic: SemanticConfig | null = null;
        if (isSemanticTask(arm.task)) {
          semantic = semanticStage2(arm.task, { seed, ...exp.stage2, ...arm.stage2, ...sub(point, 'stage2') }, transferring, transfer, dir, `arms[${ai}] (${arm.name}) stage 2`);
        } else {
        const stage2Values: Values = {
          seed,
          ...exp.stage2,
          ...arm.stage2,
          ...sub(point, 'stage2'),
          task: arm.task,
          pretrained_model_path: transferring ? STAGE1_PLACEHOLDER : null,
          weights_to_be_transferred: transferring && !mixture ? transfer.components : [],
          weights_to_be_trained: transfer.trained,
          embedding_init_strategy: transfer.embedding_init,
          transfer_layers: transferring && !mixture && transfer.layers ? transfer.layers.map(String) : [],
          transfer_scale: transferring && transfer.scale ? Object.entries(transfer.scale).map(([k, f]) => `${k}=${f}`) : [],
        };
        stage2 = resolve<AlgorithmicConfig>(ALGORITHMIC_SCHEMA, stage2Values, `arms[${ai}] (${arm.name}) stage 2`);
        }
        runs.push({
          index: runs.length,
          arm: label,
          baseArm: arm.name,
          role: arm.role,
          task: arm.task,
          seed,
          point,
          dir,
          stage1,
          mixture,
          stage2,
          semantic,
          transfer,
        });
      }
    }
  });
  const dirs = new Set<string>();
  for (const r of runs) {
    if (dirs.has(r.dir)) throw new ExperimentError(`arms: two runs map to the directory ${r.dir}; rename an arm`);
    dirs.add(r.dir);
  }
  return runs;
}
