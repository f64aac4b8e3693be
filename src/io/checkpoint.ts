/**
 * Checkpoints: a directory that PyTorch/transformers can read, written atomically and verified on load.
 *
 *   <dir>/model.safetensors       parameters by HF GPT-2 name (`transformer.` prefix); `lm_head.weight`
 *                                 omitted when tied, exactly like `save_pretrained`; metadata
 *                                 {"format": "pt"} (transformers refuses safetensors files without it)
 *   <dir>/optimizer.safetensors   Adam moments: `m.<name>`, `v.<name>` per parameter (when given)
 *   <dir>/config.json             the HF GPT2Config (when given), so `GPT2LMHeadModel.from_pretrained(dir)` works
 *   <dir>/kindling.json           sidecar: model config, step, data position, RNG states, optimizer step
 *                                 and hyper-parameters, training config, user metadata, and the sha256 and
 *                                 size of every file above
 *
 * Atomicity: an existing sidecar is removed first; every file is written to a temporary name in the same
 * directory, fsynced and renamed into place; the sidecar is written the same way LAST, and the
 * directory is fsynced. So a directory with a `kindling.json` is complete, one without is an interrupted
 * save, and a file altered or torn after the fact fails its checksum on load with an error naming it.
 *
 * Everything here is pure host code over `Map<string, Float32Array>` + shapes (no GPU, no model): the
 * glue to a ParameterStore / AdamW lives with the trainer, and reading a Hugging Face GPT-2 directory
 * (`loadHfGpt2`) lives with the model, in src/model/hf_gpt2.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors, sha256File, writeSafetensorsFile } from './safetensors.ts';
import { makeDirs } from '../util/dirs.ts';

export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const HF_CONFIG_FILE = 'config.json';
export const SIDECAR_FILE = 'kindling.json';
export const CHECKPOINT_FORMAT = 'kindling-checkpoint';
export const CHECKPOINT_VERSION = 1;

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/**
 * Adam state as saved: moments by parameter name and the step count. Any other (JSON) fields of the
 * object — lr, beta1, beta2, eps, weightDecay, maxGradNorm, … (e.g. engine/optim.ts's AdamWCheckpoint,
 * which is assignable to this type) — are stored in the sidecar and returned on load.
 */
export interface OptimizerCheckpoint {
  m: ReadonlyMap<string, Float32Array>;
  v: ReadonlyMap<string, Float32Array>;
  /** Optimizer steps taken (Adam's t). */
  step: number;
}

/** What `loadCheckpoint` returns for the optimizer: the moments, the step, and the saved hyper-parameters. */
export type LoadedOptimizer = { m: Map<string, Float32Array>; v: Map<string, Float32Array>; step: number } & Record<string, unknown>;

export type ShapeMap = ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>;

export interface CheckpointData {
  /** Model config (any JSON value; e.g. a GPTConfig). */
  config: unknown;
  /** Whether lm_head is tied to wte (then `lm_head.weight` is not written). Default: `config.tied`, else false. */
  tied?: boolean;
  params: ReadonlyMap<string, Float32Array>;
  shapes: ShapeMap;
  optimizer?: OptimizerCheckpoint;
  /** Optimizer steps completed (the training step to resume from). */
  step: number;
  /** Where the data stream stands (JSON). */
  data?: unknown;
  /** RNG states (JSON; typed arrays such as an MT19937 key are encoded and restored). */
  rng?: unknown;
  /** The resolved training config (JSON). */
  train?: unknown;
  /** Anything else: validation metrics, best score, wall time, … (JSON). */
  metadata?: Record<string, unknown>;
  /** HF GPT2Config object, written as config.json (use `toHfConfig` from src/model/config.ts). */
  hfConfig?: object;
}

export interface SaveOptions {
  /** fsync files and the directory (default true; tests may turn it off for speed). */
  fsync?: boolean;
}

export interface FileRecord {
  sha256: string;
  bytes: number;
}

/** The sidecar, as written to kindling.json. */
export interface Sidecar {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  step: number;
  created: string;
  tied: boolean;
  config: unknown;
  train: unknown;
  data: unknown;
  rng: unknown;
  metadata: Record<string, unknown>;
  /** Optimizer step and hyper-parameters (the moments are in optimizer.safetensors); null without optimizer. */
  optimizer: Record<string, unknown> | null;
  /** Tensor names and shapes of model.safetensors, in the order given. */
  params: Record<string, number[]>;
  files: Record<string, FileRecord>;
}

/** A checkpoint read back: the sidecar's fields, the tensors, and the sidecar itself. */
export interface LoadedCheckpoint extends Pick<Sidecar, 'step' | 'tied' | 'config' | 'train' | 'data' | 'rng' | 'metadata'> {
  dir: string;
  /** Parameters by name (tied: no lm_head.weight). */
  params: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
  optimizer?: LoadedOptimizer;
  hfConfig?: Record<string, unknown>;
  sidecar: Sidecar;
}

// ------------------------------------------------------------------------------------------------
// JSON with typed arrays (RNG states hold a Uint32Array key)

const TYPED_TAG = '$typed';
type TypedArrayCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Uint16ArrayConstructor
  | Int16ArrayConstructor
  | Uint32ArrayConstructor
  | Int32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;
const TYPED_CTORS: Record<string, TypedArrayCtor> = {
  Uint8Array,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
};

/** JSON.stringify that writes typed arrays as {"$typed": "Uint32Array", "base64": "…"} (and bigints as strings). */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    function (this: unknown, _key, v: unknown) {
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
        const name = v.constructor.name;
        if (!(name in TYPED_CTORS)) throw new CheckpointError(`cannot serialise a ${name}`);
        return { [TYPED_TAG]: name, base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
      }
      if (typeof v === 'bigint') return v.toString();
      return v;
    },
    indent,
  );
}

/** JSON.parse that restores what `toJson` encoded. */
export function fromJson(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>)[TYPED_TAG] === 'string') {
      const o = v as { $typed: string; base64: string };
      const Ctor = TYPED_CTORS[o.$typed];
      if (!Ctor) return v;
      const bytes = Buffer.from(o.base64, 'base64');
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      return new Ctor(copy.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT);
    }
    return v;
  });
}

// ------------------------------------------------------------------------------------------------
// Saving

function shapeOf(shapes: ShapeMap, name: string): readonly number[] | undefined {
  return shapes instanceof Map ? shapes.get(name) : (shapes as Record<string, readonly number[]>)[name];
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function tmpName(dir: string, file: string): string {
  return path.join(dir, `.${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms/filesystems cannot fsync a directory; the renames are still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function writeFileAtomic(dir: string, file: string, write: (tmp: string) => FileRecord, tmps: string[]): FileRecord {
  const tmp = tmpName(dir, file);
  tmps.push(tmp);
  let rec: FileRecord;
  try {
    rec = write(tmp);
    fs.renameSync(tmp, path.join(dir, file));
  } catch (e) {
    // Name the file: Node's own message (`ENOSPC: no space left on device, write`) has no path.
    const err = new CheckpointError(`cannot write checkpoint file ${path.join(dir, file)}: ${e instanceof Error ? e.message : String(e)}`);
    if (e instanceof Error && 'code' in e) Object.assign(err, { code: (e as NodeJS.ErrnoException).code });
    throw err;
  }
  tmps.splice(tmps.indexOf(tmp), 1);
  return rec;
}

function writeTextFile(tmp: string, text: string, sync: boolean): FileRecord {
  const buf = Buffer.from(text, 'utf8');
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, buf);
    if (sync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { sha256: sha256Buffer(buf), bytes: buf.length };
}

function sha256Buffer(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Removes temporary files left by an interrupted save of this directory. */
function removeStaleTemps(dir: string): void {
  for (const f of fs.readdirSync(dir)) {
    if (/^\..+\.tmp-\d+-[0-9a-f]{8}$/.test(f)) fs.rmSync(path.join(dir, f), { force: true });
  }
}

/**
 * Writes a checkpoint directory atomically (see the module comment). Returns the sidecar written.
 * Throws (naming the tensor) when a parameter's data length does not match its shape, or when a moment
 * is missing or mis-sized.
 */
export function saveCheckpoint(dir: string, ckpt: CheckpointData, opts: SaveOptions = {}): Sidecar {
  const sync = opts.fsync ?? true;
  if (!Number.isSafeInteger(ckpt.step) || ckpt.step < 0) throw new CheckpointError(`checkpoint step must be a non-negative integer, got ${ckpt.step}`);
  const configTied = (ckpt.config as { tied?: unknown } | null | undefined)?.tied;
  const tied = ckpt.tied ?? (typeof configTied === 'boolean' ? configTied : false);

  // Validate everything before touching the disk.
  const model = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  const params: Record<string, number[]> = {};
  for (const [name, data] of ckpt.params) {
    if (tied && name === 'lm_head.weight') continue; // tied: the head is wte (HF omits it too)
    const shape = shapeOf(ckpt.shapes, name);
    if (!shape) throw new CheckpointError(`parameter "${name}" has no shape`);
    if (!(data instanceof Float32Array)) throw new CheckpointError(`parameter "${name}": data must be a Float32Array`);
    if (numel(shape) !== data.length) throw new CheckpointError(`parameter "${name}": shape [${shape.join(', ')}] needs ${numel(shape)} values, got ${data.length}`);
    model.set(name, { shape, data });
    params[name] = [...shape];
  }
  let moments: Map<string, { shape: readonly number[]; data: Float32Array }> | null = null;
  let optimizerState: Record<string, unknown> | null = null;
  if (ckpt.optimizer) {
    const { m, v, ...rest } = ckpt.optimizer as OptimizerCheckpoint & Record<string, unknown>;
    if (!Number.isSafeInteger(rest.step) || (rest.step as number) < 0) throw new CheckpointError(`optimizer step must be a non-negative integer, got ${String(rest.step)}`);
    optimizerState = rest;
    moments = new Map();
    for (const [kind, map] of [['m', m], ['v', v]] as const) {
      for (const [name, data] of map) {
        const p = model.get(name);
        if (!p) throw new CheckpointError(`optimizer moment ${kind}.${name} has no parameter "${name}"`);
        if (!(data instanceof Float32Array) || data.length !== p.data.length) {
          throw new CheckpointError(`optimizer moment ${kind}.${name}: expected ${p.data.length} float32 values, got ${(data as ArrayLike<number>).length}`);
        }
        moments.set(`${kind}.${name}`, { shape: p.shape, data });
      }
    }
  }

  makeDirs(dir);
  removeStaleTemps(dir);
  fs.rmSync(path.join(dir, SIDECAR_FILE), { force: true });
  const tmps: string[] = [];
  try {
    const files: Record<string, FileRecord> = {};
    files[MODEL_FILE] = writeFileAtomic(dir, MODEL_FILE, (tmp) => writeSafetensorsFile(tmp, model, { format: 'pt' }, { fsync: sync }), tmps);
    if (moments) {
      files[OPTIMIZER_FILE] = writeFileAtomic(
        dir,
        OPTIMIZER_FILE,
        (tmp) => writeSafetensorsFile(tmp, moments!, { format: 'kindling-adam', step: String(optimizerState!.step) }, { fsync: sync }),
        tmps,
      );
    } else {
      fs.rmSync(path.join(dir, OPTIMIZER_FILE), { force: true });
    }
    if (ckpt.hfConfig) {
      files[HF_CONFIG_FILE] = writeFileAtomic(dir, HF_CONFIG_FILE, (tmp) => writeTextFile(tmp, JSON.stringify(ckpt.hfConfig, null, 2) + '\n', sync), tmps);
    }
    const sidecar: Sidecar = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      step: ckpt.step,
      created: new Date().toISOString(),
      tied,
      config: ckpt.config ?? null,
      train: ckpt.train ?? null,
      data: ckpt.data ?? null,
      rng: ckpt.rng ?? null,
      metadata: ckpt.metadata ?? {},
      optimizer: optimizerState,
      params,
      files,
    };
    writeFileAtomic(dir, SIDECAR_FILE, (tmp) => writeTextFile(tmp, toJson(sidecar) + '\n', sync), tmps);
    if (sync) fsyncDir(dir);
    return fromJson(toJson(sidecar)) as Sidecar;
  } catch (e) {
    for (const t of tmps) fs.rmSync(t, { force: true });
    throw e;
  }
}

// ------------------------------------------------------------------------------------------------
// Loading

/** Reads and checks kindling.json (format, version). */
export function readSidecar(dir: string): Sidecar {
  const p = path.join(dir, SIDECAR_FILE);
  if (!fs.existsSync(dir)) throw new CheckpointError(`checkpoint directory ${dir} does not exist`);
  if (!fs.existsSync(p)) throw new CheckpointError(`${dir} is not a complete checkpoint: ${SIDECAR_FILE} is missing (interrupted save, or not a checkpoint directory)`);
  let s: Sidecar;
  try {
    s = fromJson(fs.readFileSync(p, 'utf8')) as Sidecar;
  } catch (e) {
    throw new CheckpointError(`${p}: not valid JSON (${(e as Error).message})`);
  }
  if (s === null || typeof s !== 'object' || s.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`${p}: not a kindling checkpoint sidecar`);
  if (s.version > CHECKPOINT_VERSION) throw new CheckpointError(`${p}: checkpoint version ${s.version} is newer than this build understands (${CHECKPOINT_VERSION})`);
  if (!s.files || typeof s.files !== 'object' || !s.files[MODEL_FILE]) throw new CheckpointError(`${p}: no record of ${MODEL_FILE}`);
  return s;
}

/**
 * Checks the size and sha256 of every file the sidecar lists. Throws a CheckpointError naming the first
 * missing or corrupted file.
 */
export function verifyCheckpoint(dir: string, sidecar: Sidecar = readSidecar(dir)): void {
  for (const [file, rec] of Object.entries(sidecar.files)) {
    const p = path.join(dir, file);
    if (!fs.existsSync(p)) throw new CheckpointError(`checkpoint ${dir}: ${file} is missing`);
    const size = fs.statSync(p).size;
    if (size !== rec.bytes) {
      throw new CheckpointError(`checkpoint ${dir}: ${p} is corrupted: ${size} bytes, the checkpoint recorded ${rec.bytes} (truncated or modified)`);
    }
    const sha = sha256File(p);
    if (sha !== rec.sha256) {
      throw new CheckpointError(`checkpoint ${dir}: ${p} is corrupted: sha256 ${sha} does not match the recorded ${rec.sha256} (modified after the checkpoint was written)`);
    }
  }
}

export interface LoadOptions {
  /** Check sizes and sha256 of every file first (default true). */
  verify?: boolean;
  /** Also read the Adam moments (default true). */
  optimizer?: boolean;
}

export function loadCheckpoint(dir: string, opts: LoadOptions = {}): LoadedCheckpoint {
  const sidecar = readSidecar(dir);
  if (opts.verify ?? true) verifyCheckpoint(dir, sidecar);
  const modelFile = readSafetensors(path.join(dir, MODEL_FILE));
  const params = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  // Keep the order the params were given in (the sidecar's), not the file's sorted order.
  const order = Object.keys(sidecar.params ?? {});
  const names = order.length ? order : [...modelFile.tensors.keys()];
  for (const name of names) {
    const t = modelFile.tensors.get(name);
    if (!t) throw new CheckpointError(`checkpoint ${dir}: ${MODEL_FILE} has no tensor "${name}"`);
    if (!(t.data instanceof Float32Array)) throw new CheckpointError(`checkpoint ${dir}: tensor "${name}" is not floating point`);
    params.set(name, t.data);
    shapes.set(name, t.shape);
  }
  for (const name of modelFile.tensors.keys()) {
    if (!params.has(name)) throw new CheckpointError(`checkpoint ${dir}: ${MODEL_FILE} has a tensor "${name}" the sidecar does not list`);
  }
  const out: LoadedCheckpoint = {
    dir,
    step: sidecar.step,
    tied: sidecar.tied,
    config: sidecar.config,
    train: sidecar.train,
    data: sidecar.data,
    rng: sidecar.rng,
    metadata: sidecar.metadata ?? {},
    params,
    shapes,
    sidecar,
  };
  if ((opts.optimizer ?? true) && sidecar.optimizer && sidecar.files[OPTIMIZER_FILE]) {
    const f = readSafetensors(path.join(dir, OPTIMIZER_FILE));
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const [key, t] of f.tensors) {
      const kind = key.slice(0, 2);
      const name = key.slice(2);
      if ((kind !== 'm.' && kind !== 'v.') || !params.has(name)) throw new CheckpointError(`checkpoint ${dir}: unexpected tensor "${key}" in ${OPTIMIZER_FILE}`);
      (kind === 'm.' ? m : v).set(name, t.data as Float32Array);
    }
    // Keep the parameter order.
    const ordered = (src: Map<string, Float32Array>) => new Map(names.filter((n) => src.has(n)).map((n) => [n, src.get(n)!]));
    out.optimizer = { ...sidecar.optimizer, step: sidecar.optimizer.step as number, m: ordered(m), v: ordered(v) };
  }
  if (sidecar.files[HF_CONFIG_FILE]) out.hfConfig = JSON.parse(fs.readFileSync(path.join(dir, HF_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
  return out;
}

// ------------------------------------------------------------------------------------------------
// Naming, listing, pruning

/** `step-{N}` for periodic checkpoints; `best` (or `best-step-{N}` to keep a history of bests). */
export function checkpointName(kind: 'step' | 'best', step?: number): string {
  if (kind === 'best') return step === undefined ? 'best' : `best-step-${step}`;
  if (step === undefined || !Number.isSafeInteger(step) || step < 0) throw new CheckpointError(`a periodic checkpoint needs a step, got ${String(step)}`);
  return `step-${step}`;
}

export const STEP_PREFIX = 'step-';
export const BEST_STEP_PREFIX = 'best-step-';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface CheckpointEntry {
  name: string;
  step: number;
  path: string;
  /** Has a sidecar (the save finished). */
  complete: boolean;
}

/** Sub-directories of `runDir` named `{prefix}{N}`, by N ascending. */
export function listCheckpoints(runDir: string, prefix = STEP_PREFIX): CheckpointEntry[] {
  if (!fs.existsSync(runDir)) return [];
  const re = new RegExp(`^${escapeRegExp(prefix)}(\\d+)$`);
  const out: CheckpointEntry[] = [];
  for (const ent of fs.readdirSync(runDir, { withFileTypes: true })) {
    const m = re.exec(ent.name);
    if (!m || !ent.isDirectory()) continue;
    const p = path.join(runDir, ent.name);
    out.push({ name: ent.name, step: Number(m[1]), path: p, complete: fs.existsSync(path.join(p, SIDECAR_FILE)) });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The complete checkpoint with the highest step, or null. */
export function latestCheckpoint(runDir: string, prefix = STEP_PREFIX): CheckpointEntry | null {
  const done = listCheckpoints(runDir, prefix).filter((c) => c.complete);
  return done.length ? done[done.length - 1]! : null;
}

/**
 * Keeps the `keep` highest-step `{prefix}{N}` checkpoints of `runDir` and deletes the rest (the
 * reference's `save_total_limit`, applied per prefix). Returns the names removed.
 */
export function pruneCheckpoints(runDir: string, prefix: string, keep: number): string[] {
  if (!Number.isSafeInteger(keep) || keep < 0) throw new CheckpointError(`keep must be a non-negative integer, got ${keep}`);
  const all = listCheckpoints(runDir, prefix);
  const doomed = all.slice(0, Math.max(0, all.length - keep));
  for (const c of doomed) fs.rmSync(c.path, { recursive: true, force: true });
  return doomed.map((c) => c.name);
}
