/**
 * Learning-rate schedules (spec §4, §6.1, §7). A schedule maps the optimizer step s = 0, 1, 2, … to the
 * learning rate used by THAT step: lr(s) = baseLr · f(s). This is PyTorch's LambdaLR convention (the
 * factor for step 0 is applied at construction, `scheduler.step()` runs after each optimizer step), which
 * both the reference trainers and the HF Trainer use. With warmup, f(0) = 0: the first step only moves
 * Adam's moments.
 *
 * Two families:
 *
 * 'procedural' — the reference's `get_lr_scheduler` (§4), factor floored at 0.1:
 *     s ≥ total              → 0.1                      (checked first, for every kind)
 *     s < w                  → s / max(1, w)
 *     p = (s − w) / max(1, total − w)
 *     cosine                 → max(0.1, ½(1 + cos πp))
 *     linear                 → max(0.1, 1 − p)
 *     constant               → 1
 *   total = epochs·steps_per_epoch (algorithmic trainer) or max_steps (Dyck trainer).
 *
 * 'hf' — transformers' `get_scheduler` (HF Trainer, §6.1/§7.1; accelerate scripts, §7.2/§7.3):
 *     every kind but 'constant': s < w → s / max(1, w); then p = (s − w) / max(1, total − w)
 *     constant               → 1 (no warmup)
 *     constant_with_warmup   → 1
 *     linear                 → max(0, (total − s) / max(1, total − w))
 *     cosine                 → max(0, ½(1 + cos(2π·c·p))), c = 0.5 cycles: ½(1 + cos πp), 0 at s = total
 *     cosine_with_min_lr     → max(0, r + (1 − r)·½(1 + cos(2π·c·p))), r = min_lr_rate (C4: 0.1)
 *     cosine_with_restarts   → p ≥ 1: 0; else max(0, ½(1 + cos(π·((c·p) mod 1)))), c = 1 cycle
 *     polynomial             → s > total: lr_end/lr; else ((lr − lr_end)(1 − p)^power + lr_end)/lr
 *   Past `total`, 'cosine' and 'cosine_with_min_lr' rise again exactly as transformers' do (cos is
 *   periodic); trainers stop at `total`.
 *
 * Presets with the spec's numbers: `needleSchedule`, `algorithmicDownstreamSchedule` (§6.1),
 * `c4Schedule` (§7.1), `codeparrotSchedule`/`deepmindMathSchedule` (§7.2/§7.3), `proceduralSchedule` (§4).
 */

export type ProceduralKind = 'constant' | 'linear' | 'cosine';
export type HfKind = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine' | 'cosine_with_min_lr' | 'cosine_with_restarts' | 'polynomial';

export const PROCEDURAL_KINDS: readonly ProceduralKind[] = ['constant', 'linear', 'cosine'];
export const HF_KINDS: readonly HfKind[] = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_min_lr', 'cosine_with_restarts', 'polynomial'];

/** The reference's floor (MIN_LR_RATIO) in the procedural family. */
export const PROCEDURAL_FLOOR = 0.1;

export type ScheduleSpec =
  | {
      family: 'procedural';
      kind: ProceduralKind;
      baseLr: number;
      warmupSteps: number;
      totalSteps: number;
    }
  | {
      family: 'hf';
      kind: HfKind;
      baseLr: number;
      warmupSteps: number;
      totalSteps: number;
      /** cosine_with_min_lr: the floor as a fraction of baseLr (default 0). */
      minLrRate?: number;
      /** cosine: 0.5 (default); cosine_with_restarts: 1 (default). */
      numCycles?: number;
      /** polynomial: final lr (default 1e-7) and power (default 1). */
      lrEnd?: number;
      power?: number;
    };

export class ScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

function checkSteps(warmup: number, total: number): void {
  if (!Number.isSafeInteger(warmup) || warmup < 0) throw new ScheduleError(`warmup_steps must be a non-negative integer, got ${warmup}`);
  if (!Number.isSafeInteger(total) || total < 0) throw new ScheduleError(`total steps must be a non-negative integer, got ${total}`);
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new ScheduleError(`step must be a non-negative integer, got ${step}`);
}

/** The reference procedural trainer's factor f(s) (§4). */
export function proceduralFactor(kind: ProceduralKind, step: number, warmup: number, total: number): number {
  checkStep(step);
  if (step >= total) return PROCEDURAL_FLOOR;
  if (step < warmup) return step / Math.max(1, warmup);
  const p = (step - warmup) / Math.max(1, total - warmup);
  switch (kind) {
    case 'cosine':
      return Math.max(PROCEDURAL_FLOOR, 0.5 * (1 + Math.cos(Math.PI * p)));
    case 'linear':
      return Math.max(PROCEDURAL_FLOOR, 1 - p);
    case 'constant':
      return 1;
    default:
      throw new ScheduleError(`unknown procedural lr_schedule "${String(kind)}" (expected one of ${PROCEDURAL_KINDS.join(', ')})`);
  }
}

export interface HfFactorOptions {
  minLrRate?: number;
  numCycles?: number;
  lrEnd?: number;
  power?: number;
  /** polynomial only: the initial lr (the factor is relative to it). */
  baseLr?: number;
}

/** transformers' schedule factor f(s) for `get_scheduler(kind, …)` (§6.1, §7). */
export function hfFactor(kind: HfKind, step: number, warmup: number, total: number, o: HfFactorOptions = {}): number {
  checkStep(step);
  if (kind === 'constant') return 1;
  if (step < warmup) return step / Math.max(1, warmup);
  const p = (step - warmup) / Math.max(1, total - warmup);
  switch (kind) {
    case 'constant_with_warmup':
      return 1;
    case 'linear':
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case 'cosine': {
      const c = o.numCycles ?? 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * c * 2 * p)));
    }
    case 'cosine_with_min_lr': {
      const c = o.numCycles ?? 0.5;
      const r = o.minLrRate ?? 0;
      const f = 0.5 * (1 + Math.cos(Math.PI * c * 2 * p));
      return Math.max(0, f * (1 - r) + r);
    }
    case 'cosine_with_restarts': {
      const c = o.numCycles ?? 1;
      if (p >= 1) return 0;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((c * p) % 1))));
    }
    case 'polynomial': {
      const lr0 = o.baseLr;
      if (lr0 === undefined || !(lr0 > 0)) throw new ScheduleError('polynomial schedule needs baseLr > 0');
      const lrEnd = o.lrEnd ?? 1e-7;
      const power = o.power ?? 1;
      if (!(lr0 > lrEnd)) throw new ScheduleError(`polynomial schedule: lr_end (${lrEnd}) must be smaller than the initial lr (${lr0})`);
      if (step > total) return lrEnd / lr0;
      const remaining = 1 - (step - warmup) / (total - warmup);
      return ((lr0 - lrEnd) * remaining ** power + lrEnd) / lr0;
    }
    default:
      throw new ScheduleError(`unknown lr_scheduler_type "${String(kind)}" (expected one of ${HF_KINDS.join(', ')})`);
  }
}

export function validateSchedule(spec: ScheduleSpec): void {
  if (typeof spec.baseLr !== 'number' || !(spec.baseLr >= 0) || !Number.isFinite(spec.baseLr)) throw new ScheduleError(`learning rate must be a finite number >= 0, got ${spec.baseLr}`);
  checkSteps(spec.warmupSteps, spec.totalSteps);
  if (spec.family === 'procedural') {
    if (!PROCEDURAL_KINDS.includes(spec.kind)) throw new ScheduleError(`unknown procedural lr_schedule "${spec.kind}" (expected one of ${PROCEDURAL_KINDS.join(', ')})`);
  } else if (spec.family === 'hf') {
    if (!HF_KINDS.includes(spec.kind)) throw new ScheduleError(`unknown lr_scheduler_type "${spec.kind}" (expected one of ${HF_KINDS.join(', ')})`);
    if (spec.minLrRate !== undefined && !(spec.minLrRate >= 0 && spec.minLrRate <= 1)) throw new ScheduleError(`min_lr_rate must be in [0, 1], got ${spec.minLrRate}`);
  } else {
    throw new ScheduleError(`unknown schedule family "${String((spec as { family: unknown }).family)}"`);
  }
}

/** f(s) for a spec. */
export function lrFactor(spec: ScheduleSpec, step: number): number {
  if (spec.family === 'procedural') return proceduralFactor(spec.kind, step, spec.warmupSteps, spec.totalSteps);
  return hfFactor(spec.kind, step, spec.warmupSteps, spec.totalSteps, { ...spec });
}

/** lr(s) = baseLr · f(s), validated once. */
export function makeSchedule(spec: ScheduleSpec): (step: number) => number {
  validateSchedule(spec);
  return (step) => spec.baseLr * lrFactor(spec, step);
}

/** One-line description for logs and reports. */
export function describeSchedule(spec: ScheduleSpec): string {
  const extra = spec.family === 'hf' && spec.kind === 'cosine_with_min_lr' ? `, min_lr_rate ${spec.minLrRate ?? 0}` : '';
  return `${spec.family} ${spec.kind}: lr ${spec.baseLr}, warmup ${spec.warmupSteps}, total ${spec.totalSteps}${extra}`;
}

// ------------------------------------------------------------------------------------------------
// Presets (the numbers of the spec)

/** §4: the procedural trainer as shipped — constant 5e-4, no warmup (total only matters for the 0.1 tail). */
export function proceduralSchedule(o: { lr?: number; kind?: ProceduralKind; warmupSteps?: number; totalSteps: number }): ScheduleSpec {
  return { family: 'procedural', kind: o.kind ?? 'constant', baseLr: o.lr ?? 5e-4, warmupSteps: o.warmupSteps ?? 0, totalSteps: o.totalSteps };
}

/** §6.1: HF Trainer defaults of the algorithmic harness — warmup 500 to 1e-3, cosine to 0 at max_steps. */
export function algorithmicDownstreamSchedule(maxSteps: number, o: { lr?: number; warmupSteps?: number } = {}): ScheduleSpec {
  return { family: 'hf', kind: 'cosine', baseLr: o.lr ?? 1e-3, warmupSteps: o.warmupSteps ?? 500, totalSteps: maxSteps };
}

/** §6.2–6.4: needle / additions, max_steps = 250·40000/1000 = 10,000. */
export function needleSchedule(): ScheduleSpec {
  return algorithmicDownstreamSchedule(10_000);
}

/** §7.1: C4 — lr 5e-4, no warmup, cosine with floor 0.1 over 10,000 steps. */
export function c4Schedule(o: { lr?: number; maxSteps?: number; warmupSteps?: number; minLrRate?: number } = {}): ScheduleSpec {
  return { family: 'hf', kind: 'cosine_with_min_lr', baseLr: o.lr ?? 5e-4, warmupSteps: o.warmupSteps ?? 0, totalSteps: o.maxSteps ?? 10_000, minLrRate: o.minLrRate ?? 0.1 };
}

/** §7.2: CodeParrot — lr 5e-5, HF cosine to 0 at max_train_steps (50,000), no warmup. */
export function codeparrotSchedule(o: { lr?: number; maxSteps?: number; warmupSteps?: number } = {}): ScheduleSpec {
  return { family: 'hf', kind: 'cosine', baseLr: o.lr ?? 5e-5, warmupSteps: o.warmupSteps ?? 0, totalSteps: o.maxSteps ?? 50_000 };
}

/** §7.3: DeepMind-Math — as CodeParrot. */
export function deepmindMathSchedule(o: { lr?: number; maxSteps?: number; warmupSteps?: number } = {}): ScheduleSpec {
  return codeparrotSchedule(o);
}
