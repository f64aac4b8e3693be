/**
 * Reports of an experiment: `results.json` (the contract, see types.ts), `results.md` (the paper's
 * table, a per-arm table, warnings, per-seed needle checkpoints) and `report.html` (the same tables
 * and SVG charts: test accuracy and training loss against step, one line per arm × seed, and the
 * final accuracies per arm). The HTML is one self-contained file: inline CSS and SVG, no script, no
 * network. Every text taken from the records (arm names come from user YAML) is escaped.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { aggregate, readRunRecords } from './aggregate.ts';
import { fisherExactTwoSided, median } from './stats.ts';
import type { ArmRole, ArmSummary, DataSaved, ExperimentResults } from './types.ts';
import { controlStream } from '../data/procedural/registry.ts';
import { isSemanticTask } from '../train/semantic.ts';
import { makeDirs } from '../util/dirs.ts';

// ---------------------------------------------------------------------------------------------------
// Formatting

/** A fraction of 1 as a percentage with one decimal; "–" for NaN. */
export function pct(x: number): string {
  return Number.isFinite(x) ? (x * 100).toFixed(1) : '–';
}

/** "mean ± std (best b, n seeds)" in percent. */
export function armCell(arm: ArmSummary): string {
  const n = arm.seeds.length;
  return `${pct(arm.mean)} ± ${pct(arm.std)} (best ${pct(arm.best.final_accuracy)}, ${n} seed${n === 1 ? '' : 's'})`;
}

/** "12.3 s", "24 min 05 s", "1 h 07 min": rounded once, so 1 499.6 s is 25 min 00 s (never "24 min 60 s"). */
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '–';
  if (Math.round(s * 10) < 600) return `${s.toFixed(1)} s`;
  const t = Math.round(s);
  const m = Math.floor(t / 60);
  if (m < 60) return `${m} min ${String(t - m * 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m - h * 60).padStart(2, '0')} min`;
}

function fmtFrac(x: number | null | undefined): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(2) : '–';
}

/** HTML/XML text and attribute escaping. */
export function esc(s: unknown): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A Markdown table cell: no pipes, no raw HTML, one line. */
function mdCell(s: string): string {
  return s
    .replace(/\r?\n/g, ' ')
    .replace(/&(?=#?[A-Za-z0-9]+;)/g, '&amp;')
    .replace(/<(?=[A-Za-z/!?])/g, '&lt;')
    .replace(/\|/g, '\\|');
}

// ---------------------------------------------------------------------------------------------------
// The paper's reference values (spec §8.1), fractions of 1

interface PaperRow {
  label: string;
  shuffled: number;
  baseline: number;
  procedural: number;
  proceduralArm: string;
}

const PAPER: Record<string, PaperRow> = {
  condattendstream_30: { label: 'Context recall / needle', shuffled: 0.103, baseline: 0.113, procedural: 0.969, proceduralArm: 'k-Dyck' },
  additionstream_10: { label: 'Reversed addition', shuffled: 0.65, baseline: 0.764, procedural: 0.91, proceduralArm: 'ECA' },
  multiplication_5: { label: 'Multiplication', shuffled: 0.484, baseline: 0.427, procedural: 0.635, proceduralArm: 'Union' },
};

export function isNeedle(task: string): boolean {
  return task.startsWith('condattendstream');
}

function taskLabel(task: string): string {
  if (PAPER[task]) return `${PAPER[task].label} (${task})`;
  if (isNeedle(task)) return `Context recall / needle (${task})`;
  if (task.startsWith('additionstream')) return `Reversed addition (${task})`;
  if (task.startsWith('forwardaddition')) return `Forward addition (${task})`;
  if (task.startsWith('multiplication')) return `Multiplication (${task})`;
  return task;
}

function paperLines(task: string): { label: string; value: number }[] {
  const p = PAPER[task];
  if (!p) return [];
  return [
    { label: `paper: no pretraining ${pct(p.baseline)}%`, value: p.baseline },
    { label: `paper: ${p.proceduralArm} ${pct(p.procedural)}%`, value: p.procedural },
    { label: `paper: shuffled ${pct(p.shuffled)}%`, value: p.shuffled },
  ];
}

// ---------------------------------------------------------------------------------------------------
// Tables, as data rendered twice (Markdown and HTML)

interface Table {
  headers: string[];
  rows: string[][];
  /** Rows (by index) drawn as a secondary line (the paper's values). */
  muted?: Set<number>;
}

export function tasksOf(results: ExperimentResults): string[] {
  const tasks: string[] = [];
  for (const a of results.arms) if (!tasks.includes(a.task)) tasks.push(a.task);
  return tasks;
}

const algorithmicOnly = (results: ExperimentResults): ExperimentResults => ({ ...results, arms: results.arms.filter((a) => !isSemanticTask(a.task)) });

/** Tokens as 1.23M / 45.6k / 789. */
export function fmtTokens(t: number | null): string {
  if (t === null || !Number.isFinite(t)) return '–';
  if (t >= 1e9) return `${(t / 1e9).toFixed(2)}B`;
  if (t >= 1e6) return `${(t / 1e6).toFixed(2)}M`;
  if (t >= 1e3) return `${(t / 1e3).toFixed(1)}k`;
  return t.toFixed(0);
}

const fmtSaved = (x: number | null): string => (x === null || !Number.isFinite(x) ? 'not reached' : `${(100 * x).toFixed(1)}%`);

/**
 * A semantic task's table: per arm, the final validation loss and perplexity (mean ± std over seeds),
 * DM-Math's problem accuracy, and against the baseline's final loss the tokens to reach it and the data saved.
 */
export function semanticTable(results: ExperimentResults, task: string): Table {
  const arms = results.arms.filter((a) => a.task === task);
  const ds = results.data_saved?.find((d) => d.task === task);
  const math = task === 'deepmind_math';
  const headers = ['Arm', 'Role', 'Stage 1', 'Final validation loss', 'Perplexity', ...(math ? ['Problem accuracy (%)'] : []), 'Procedural tokens', 'Tokens to reach baseline loss', 'First evaluation there', 'Data saved', 'Data saved, procedural tokens counted'];
  const rows = arms.map((a) => {
    const runs = a.seeds.map((s) => s.semantic).filter((x) => !!x);
    const loss = meanStdOf(runs.map((r) => r!.final_loss));
    const ppl = meanStdOf(runs.map((r) => r!.final_perplexity));
    const d = ds?.arms.find((x) => x.arm === a.name);
    const isBase = ds?.baseline === a.name;
    return [
      a.name,
      a.role,
      stage1Cell(a),
      `${fmtNum(loss.mean, 4)} ± ${fmtNum(loss.std, 4)}`,
      fmtNum(ppl.mean, 2),
      ...(math ? [`${pct(a.mean)} ± ${pct(a.std)}`] : []),
      fmtTokens(runs.length ? meanStdOf(runs.map((r) => r!.procedural_tokens)).mean : null),
      isBase ? `${fmtTokens(ds!.baseline_tokens)} (baseline)` : fmtTokens(d?.tokens_to_reach ?? null),
      isBase ? '–' : fmtTokens(d?.tokens_to_reach_first_eval ?? null),
      isBase ? '–' : d ? fmtSaved(d.data_saved) : '–',
      isBase ? '–' : d ? fmtSaved(d.data_saved_with_procedural) : '–',
    ];
  });
  return { headers, rows };
}

function meanStdOf(xs: number[]): { mean: number; std: number } {
  const v = xs.filter(Number.isFinite);
  if (!v.length) return { mean: NaN, std: NaN };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / v.length) };
}

const fmtNum = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : '–');

/** The data-saved sentence of a task. */
export function dataSavedText(d: DataSaved): string {
  const lines = [`Target: the baseline (${d.baseline}) final validation loss ${fmtNum(d.target_loss, 4)} after ${fmtTokens(d.baseline_tokens)} tokens.`];
  for (const a of d.arms) {
    lines.push(
      a.tokens_to_reach === null
        ? `${a.arm}: does not reach it within its ${fmtTokens(d.baseline_tokens)} tokens (final loss ${fmtNum(a.final_loss, 4)}).`
        : `${a.arm}: reaches it after ${fmtTokens(a.tokens_to_reach)} tokens (first evaluation at or below it: ${fmtTokens(a.tokens_to_reach_first_eval)}); data saved ${fmtSaved(a.data_saved)}, ${fmtSaved(a.data_saved_with_procedural)} counting its ${fmtTokens(a.procedural_tokens)} procedural tokens.` +
            (a.seeds.length > 1 ? ` Per seed: ${a.seeds.map((s) => `seed ${s.seed} ${fmtSaved(s.data_saved)}`).join(', ')}.` : ''),
    );
  }
  return lines.join('\n');
}

/** The arm with the highest mean (NaN means lose; ties → first). */
function bestArm(arms: ArmSummary[]): ArmSummary | undefined {
  let best: ArmSummary | undefined;
  for (const a of arms) {
    if (!best) best = a;
    else if (Number.isFinite(a.mean) && (!Number.isFinite(best.mean) || a.mean > best.mean)) best = a;
  }
  return best;
}

/** The paper's table: one row per downstream task; the arm is named where there was a choice. */
export function paperTable(results: ExperimentResults): Table {
  const rows: string[][] = [];
  const muted = new Set<number>();
  for (const task of tasksOf(results)) {
    const arms = results.arms.filter((a) => a.task === task);
    const cell = (role: ArmRole): string => {
      const of = arms.filter((a) => a.role === role);
      const best = bestArm(of);
      if (!best) return '–';
      return role === 'procedural' || of.length > 1 ? `${best.name}: ${armCell(best)}` : armCell(best);
    };
    rows.push([taskLabel(task), cell('shuffled'), cell('baseline'), cell('procedural')]);
    const p = PAPER[task];
    if (p) {
      muted.add(rows.length);
      rows.push(['↳ paper (§8.1)', pct(p.shuffled), pct(p.baseline), `${p.proceduralArm}: ${pct(p.procedural)}`]);
    }
  }
  return { headers: ['Downstream task', 'Best shuffled', 'No pretraining', 'Best procedural'], rows, muted };
}

function stage1Cell(arm: ArmSummary): string {
  if (!arm.stage1) return '–';
  const mark = arm.stage1.learned ? '✓' : '✗';
  if (arm.stage1.closing_accuracy !== null) return `${mark} closing ${fmtFrac(arm.stage1.closing_accuracy)}`;
  const acc = arm.seeds.map((s) => s.stage1?.accuracy).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return acc.length ? `${mark} token acc. ${fmtFrac(acc.reduce((a, b) => a + b, 0) / acc.length)}` : mark;
}

function seedFinals(arm: ArmSummary): string {
  return arm.seeds.map((s) => `s${s.seed} ${pct(s.final_accuracy)}${s.completed ? '' : '*'}`).join(', ');
}

/** One row per arm: role, task, stage 1, mean, std, best seed, per-seed finals (* = unfinished run). */
export function armTable(results: ExperimentResults): Table {
  return {
    headers: ['Arm', 'Role', 'Task', 'Stage 1 learned', 'Mean %', 'Std', 'Best seed', 'Per-seed final %'],
    rows: results.arms.map((a) => [
      a.name,
      a.role,
      a.task,
      stage1Cell(a),
      pct(a.mean),
      pct(a.std),
      `s${a.best.seed} ${pct(a.best.final_accuracy)}`,
      seedFinals(a),
    ]),
  };
}

/** The threshold of the learned gate, if the stage-1 settings record one. */
function gateThreshold(arm: ArmSummary): number | undefined {
  const s = arm.stage1 ?? {};
  for (const [k, v] of Object.entries(s)) if (/threshold|gate/i.test(k) && typeof v === 'number') return v;
  return undefined;
}

/** One line per procedural arm whose stage 1 did not learn its language (in every seed). */
export function stage1Warnings(results: ExperimentResults): string[] {
  const out: string[] = [];
  for (const a of results.arms) {
    // A control stream (shuffled, uniform) is meant not to be learnable: its ✗ is in the arm table, not a warning.
    if (!a.stage1 || a.stage1.learned || controlStream(String(a.stage1.task), a.role === 'shuffled')) continue;
    const t = gateThreshold(a);
    const bound = t === undefined ? 'threshold' : `threshold ${t}`;
    let what: string;
    if (a.stage1.closing_accuracy !== null) what = `closing accuracy ${fmtFrac(a.stage1.closing_accuracy)} < ${bound}`;
    else {
      const acc = a.seeds.map((s) => s.stage1?.accuracy).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      what = acc.length ? `token accuracy ${fmtFrac(acc.reduce((x, y) => x + y, 0) / acc.length)} < ${bound}` : `below ${bound}`;
    }
    const some = a.seeds.some((s) => s.stage1?.learned);
    out.push(`${a.name}: stage 1 did not learn its language (${what})${some ? ' in some seeds' : ''}: its transfer says nothing`);
  }
  return out;
}

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** At most `max` evaluation steps (> 0) spread over the run: round multiples, snapped to existing steps. */
export function checkpointSteps(steps: number[], max = 6): number[] {
  const all = [...new Set(steps.filter((s) => Number.isFinite(s) && s > 0))].sort((a, b) => a - b);
  if (all.length <= max) return all;
  const last = all[all.length - 1];
  const stride = niceStep(last, max);
  const out: number[] = [];
  for (let t = stride; t <= last + 1e-9 && out.length < max; t += stride) {
    let nearest = all[0];
    for (const s of all) if (Math.abs(s - t) < Math.abs(nearest - t)) nearest = s;
    if (!out.includes(nearest)) out.push(nearest);
  }
  return out;
}

function fmtStep(s: number): string {
  return s >= 1000 && s % 100 === 0 ? `${s / 1000}k` : String(s);
}

/**
 * Per-seed test accuracy (%) at a few evaluation steps, one row per arm × seed ("–": not reached),
 * and the first evaluated step at ≥ 50% (when a needle-style jump happened; "–": never).
 */
export function checkpointTable(results: ExperimentResults, task: string): Table {
  const arms = results.arms.filter((a) => a.task === task);
  const steps = checkpointSteps(arms.flatMap((a) => a.seeds.flatMap((s) => s.curve.map((p) => p[0]))));
  const rows: string[][] = [];
  for (const a of arms) {
    for (const s of a.seeds) {
      const at = new Map(s.curve.map((p) => [p[0], p[1]] as const));
      const half = s.steps_to_half === null ? '–' : String(s.steps_to_half);
      rows.push([a.name, String(s.seed), ...steps.map((t) => (at.has(t) ? pct(at.get(t)!) : '–')), half]);
    }
  }
  return { headers: ['Arm', 'Seed', ...steps.map((t) => `${fmtStep(t)} steps`), '≥ 50% at step'], rows };
}

/**
 * How many seeds of each arm jumped (reached ≥ 50%), when, and, against the task's first baseline
 * arm, Fisher's exact test on jumped / not jumped (two-sided): the per-seed jump is the needle
 * effect's unit, so the count, not the mean accuracy, is what an arm changes. A seed counts when
 * its run completed or it jumped (an unfinished run that has not jumped yet is left out).
 */
export function jumpTable(results: ExperimentResults, task: string): Table {
  const arms = results.arms.filter((a) => a.task === task);
  const base = arms.find((a) => a.role === 'baseline');
  const counted = (a: ArmSummary) => a.seeds.filter((s) => s.completed || s.steps_to_half !== null);
  const jumped = (a: ArmSummary) => counted(a).filter((s) => s.steps_to_half !== null);
  const rows = arms.map((a) => {
    const n = counted(a).length;
    const steps = jumped(a).map((s) => s.steps_to_half!);
    const lo = Math.min(...steps);
    const hi = Math.max(...steps);
    const when = !steps.length ? '–' : lo === hi ? String(lo) : `${median(steps)} (${lo}–${hi})`;
    let p = '–';
    if (base && a !== base && n > 0 && counted(base).length > 0) p = fmtP(fisherExactTwoSided(steps.length, n, jumped(base).length, counted(base).length));
    return [a.name, a.role, `${steps.length} of ${n}`, when, p];
  });
  return { headers: ['Arm', 'Role', 'Seeds ≥ 50%', 'Step reaching 50%: median (range)', base ? `Fisher p vs ${base.name} (two-sided)` : 'Fisher p (no baseline arm)'], rows };
}

/** A p-value: two decimals, or two significant digits in exponent form below 0.01 (1.4e-3). */
function fmtP(p: number): string {
  return p >= 0.01 ? p.toFixed(2) : p.toExponential(1);
}

export function tableMd(t: Table): string {
  const line = (cells: string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
  return [line(t.headers), `|${t.headers.map(() => '---').join('|')}|`, ...t.rows.map(line)].join('\n');
}

function tableHtml(t: Table): string {
  const head = `<tr>${t.headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = t.rows
    .map((r, i) => `<tr${t.muted?.has(i) ? ' class="paper"' : ''}>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** results.md text. */
export function markdownReport(results: ExperimentResults): string {
  const parts: string[] = [];
  parts.push(`# Experiment ${results.experiment}`);
  parts.push(
    `Runs: ${results.runs.completed} of ${results.runs.planned} completed · elapsed ${fmtDuration(results.elapsed_s)}` +
      (results.machine ? ` · machine: ${results.machine}` : ''),
  );
  const algo = algorithmicOnly(results);
  if (algo.arms.length || results.arms.length === 0) parts.push(`## Final test accuracy (%, mean ± std over seeds)\n\n${tableMd(paperTable(algo))}`);
  for (const task of tasksOf(results).filter(isSemanticTask)) {
    const d = results.data_saved?.find((x) => x.task === task);
    parts.push(
      `## ${task}: validation loss and data saved\n\n` +
        `Data saved = 1 − tokens_arm / tokens_baseline, where tokens_arm is where the arm's mean validation-loss curve reaches the baseline's final loss (linear between evaluations); "counted" adds the arm's procedural tokens to tokens_arm (spec §7.4–7.5).\n\n` +
        tableMd(semanticTable(results, task)) +
        (d ? `\n\n${dataSavedText(d).split('\n').map((l) => `- ${mdCell(l)}`).join('\n')}` : '\n\nNo baseline arm: nothing to measure the data saved against.'),
    );
  }
  const partial = results.arms.some((a) => a.seeds.some((x) => !x.completed));
  parts.push(`## Arms\n\n${tableMd(armTable(results))}${partial ? '\n\n* = run not completed (partial record).' : ''}`);
  const warnings = stage1Warnings(results);
  if (warnings.length) parts.push(`## Warnings\n\n${warnings.map((w) => `- ⚠ ${mdCell(w)}`).join('\n')}`);
  for (const task of tasksOf(results).filter(isNeedle)) {
    parts.push(
      `## ${taskLabel(task)}: per-seed test accuracy (%) at checkpoints\n\n` +
        `The needle effect is a sudden jump in single seeds: read the rows, not only the means.\n\n` +
        tableMd(checkpointTable(results, task)) +
        `\n\nSeeds that jumped (reached ≥ 50%), when, and the count against the baseline's:\n\n` +
        tableMd(jumpTable(results, task)),
    );
  }
  return parts.join('\n\n') + '\n';
}

// ---------------------------------------------------------------------------------------------------
// SVG charts

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
const DASHES = ['', '7 3', '2 3', '9 3 2 3', '1 2', '12 4'];

function armColour(results: ExperimentResults, arm: ArmSummary): string {
  return PALETTE[results.arms.indexOf(arm) % PALETTE.length];
}

/** Dash and opacity of the i-th seed (by position in the task's seed list). */
function seedStyle(i: number): { dash: string; opacity: number } {
  return { dash: DASHES[i % DASHES.length], opacity: Math.max(0.35, 0.95 - 0.25 * Math.floor(i / DASHES.length)) };
}

const n2 = (x: number) => (Math.round(x * 100) / 100).toString();

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return a % 1000 === 0 ? `${v / 1000}k` : `${n2(v / 1000)}k`;
  if (a >= 1) return n2(v);
  return Number(v.toPrecision(2)).toString();
}

function linearTicks(lo: number, hi: number, count = 5): number[] {
  const step = niceStep(hi - lo, count);
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
  label: (v: number) => string;
}

function linearAxis(lo: number, hi: number, label = fmtTick): Axis {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  return { lo, hi, log: false, ticks: linearTicks(lo, hi), label };
}

function logAxis(lo: number, hi: number): Axis {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const ticks: number[] = [];
  const mult = b - a <= 2 ? [1, 2, 5] : [1];
  for (let k = a; k <= b; k++) for (const m of mult) {
    const v = m * 10 ** k;
    if (v >= 10 ** a && v <= 10 ** b) ticks.push(Number(v.toPrecision(3)));
  }
  return { lo: 10 ** a, hi: 10 ** b, log: true, ticks, label: fmtTick };
}

interface Series {
  arm: ArmSummary;
  seed: number;
  colour: string;
  dash: string;
  opacity: number;
  points: [number, number][];
  title: string;
}

interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fixed y range (accuracy); otherwise from the data. */
  yRange?: [number, number];
  yFormat?: (v: number) => string;
  /** Log scale when the positive data span more than 10×. */
  autoLog?: boolean;
  refs?: { label: string; value: number }[];
  legend: { colour: string; label: string; dash?: string; opacity?: number }[];
}

const W = 830;
const PLOT_W = 500;
const M = { left: 64, top: 30, bottom: 48 };
const PLOT_H = 260;

const minOf = (xs: number[]) => xs.reduce((a, b) => (b < a ? b : a), Infinity);
const maxOf = (xs: number[]) => xs.reduce((a, b) => (b > a ? b : a), -Infinity);

/** At most ~`max` points per line: long curves (a loss every step) are averaged in consecutive buckets. */
function thin(points: [number, number][], max = 600): [number, number][] {
  if (points.length <= max) return points;
  const k = Math.ceil(points.length / max);
  const out: [number, number][] = [];
  for (let i = 0; i < points.length; i += k) {
    const b = points.slice(i, i + k);
    out.push([b.reduce((a, p) => a + p[0], 0) / b.length, b.reduce((a, p) => a + p[1], 0) / b.length]);
  }
  return out;
}

function lineChart(spec: ChartSpec): string {
  const pts = spec.series.map((s) => thin(s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))));
  const xs = pts.flat().map((p) => p[0]);
  const ys = pts.flat().map((p) => p[1]);
  const xAxis = linearAxis(0, xs.length ? maxOf(xs) : 1);
  let yAxis: Axis;
  if (spec.yRange) yAxis = { ...linearAxis(spec.yRange[0], spec.yRange[1]), label: spec.yFormat ?? fmtTick };
  else {
    const lo = ys.length ? minOf(ys) : 0;
    const hi = ys.length ? maxOf(ys) : 1;
    if (spec.autoLog && lo > 0 && hi / lo > 10) yAxis = logAxis(lo, hi);
    else yAxis = linearAxis(Math.min(0, lo), hi);
  }
  const sx = (x: number) => M.left + ((x - xAxis.lo) / (xAxis.hi - xAxis.lo || 1)) * PLOT_W;
  const sy = (y: number) => {
    const t = yAxis.log
      ? (Math.log10(y) - Math.log10(yAxis.lo)) / (Math.log10(yAxis.hi) - Math.log10(yAxis.lo) || 1)
      : (y - yAxis.lo) / (yAxis.hi - yAxis.lo || 1);
    return M.top + (1 - t) * PLOT_H;
  };
  const inY = (y: number) => (yAxis.log ? y > 0 : true) && y >= yAxis.lo - 1e-12 && y <= yAxis.hi + 1e-12;

  const legendH = M.top + spec.legend.length * 18 + 10;
  const H = Math.max(M.top + PLOT_H + M.bottom, legendH);
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`);
  o.push(`<title>${esc(spec.title)}</title>`);
  o.push(`<text class="ctitle" x="${M.left}" y="18">${esc(spec.title)}</text>`);
  // Grid and ticks.
  const x0 = M.left;
  const x1 = M.left + PLOT_W;
  const y0 = M.top + PLOT_H;
  o.push(`<g class="grid">`);
  for (const t of yAxis.ticks) {
    const y = n2(sy(t));
    o.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}"/>`);
  }
  for (const t of xAxis.ticks) {
    const x = n2(sx(t));
    o.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${y0}"/>`);
  }
  o.push(`</g>`);
  o.push(`<g class="axis">`);
  o.push(`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}"/><line x1="${x0}" y1="${M.top}" x2="${x0}" y2="${y0}"/>`);
  for (const t of yAxis.ticks) {
    const y = n2(sy(t));
    o.push(`<line x1="${x0 - 4}" y1="${y}" x2="${x0}" y2="${y}"/><text x="${x0 - 7}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(yAxis.label(t))}</text>`);
  }
  for (const t of xAxis.ticks) {
    const x = n2(sx(t));
    o.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + 4}"/><text x="${x}" y="${y0 + 16}" text-anchor="middle">${esc(xAxis.label(t))}</text>`);
  }
  o.push(`<text x="${x0 + PLOT_W / 2}" y="${y0 + 36}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  o.push(`<text transform="translate(16 ${M.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel + (yAxis.log ? ' (log scale)' : ''))}</text>`);
  o.push(`</g>`);
  // Paper reference lines, labels pushed apart so that close values stay readable.
  const refs = (spec.refs ?? []).filter((r) => inY(r.value)).map((r) => ({ ...r, y: sy(r.value) })).sort((a, b) => b.y - a.y);
  if (refs.length) {
    o.push(`<g class="ref">`);
    let last = Infinity;
    for (const r of refs) {
      const ly = Math.min(r.y - 4, last - 11);
      last = ly;
      o.push(`<line x1="${x0}" y1="${n2(r.y)}" x2="${x1}" y2="${n2(r.y)}"/><text x="${x1 - 4}" y="${n2(ly)}" text-anchor="end">${esc(r.label)}</text>`);
    }
    o.push(`</g>`);
  }
  // One path per arm × seed (NaN points are skipped), a dot where a series has a single point.
  o.push(`<g class="series">`);
  let empty = true;
  spec.series.forEach((s, i) => {
    const p = pts[i].filter(([, y]) => inY(y));
    if (p.length === 0) return;
    empty = false;
    const d = p.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${n2(sx(x))} ${n2(sy(y))}`).join(' ');
    const style = `stroke="${s.colour}" stroke-opacity="${s.opacity}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}`;
    o.push(`<path class="run" data-arm="${esc(s.arm.name)}" data-seed="${s.seed}" d="${d}" ${style}><title>${esc(s.title)}</title></path>`);
    if (p.length === 1) o.push(`<circle cx="${n2(sx(p[0][0]))}" cy="${n2(sy(p[0][1]))}" r="3" fill="${s.colour}"/>`);
  });
  o.push(`</g>`);
  if (empty) o.push(`<text class="nodata" x="${x0 + PLOT_W / 2}" y="${M.top + PLOT_H / 2}" text-anchor="middle">no data</text>`);
  // Legend.
  const lx = x1 + 24;
  o.push(`<g class="legend">`);
  spec.legend.forEach((l, i) => {
    const y = M.top + 6 + i * 18;
    const dash = l.dash ? ` stroke-dasharray="${l.dash}"` : '';
    const op = l.opacity !== undefined ? ` stroke-opacity="${l.opacity}"` : '';
    const shown = l.label.length > 34 ? `${l.label.slice(0, 33)}…` : l.label;
    o.push(`<line x1="${lx}" y1="${y}" x2="${lx + 26}" y2="${y}" stroke="${l.colour}" stroke-width="2.5"${dash}${op}/><text x="${lx + 32}" y="${y}" dominant-baseline="middle">${esc(shown)}<title>${esc(l.label)}</title></text>`);
  });
  o.push(`</g>`);
  o.push(`</svg>`);
  return o.join('\n');
}

/** Final accuracy per arm: a bar at the mean, a dot per seed, a whisker of ± std, the paper's values dashed. */
function finalsChart(results: ExperimentResults, task: string): string {
  const arms = results.arms.filter((a) => a.task === task);
  const rowH = 26;
  const left = 230;
  const plotW = 460;
  const top = 30;
  const refs = paperLines(task);
  const H = top + arms.length * rowH + 44 + (refs.length ? 16 : 0);
  const sx = (v: number) => left + Math.max(0, Math.min(1, v)) * plotW;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${left + plotW + 40}" height="${H}" viewBox="0 0 ${left + plotW + 40} ${H}" role="img">`);
  o.push(`<title>${esc(`${taskLabel(task)}: final test accuracy per arm`)}</title>`);
  o.push(`<text class="ctitle" x="${left}" y="18">${esc('Final test accuracy per arm (bar: mean, dots: seeds, whisker: ± std)')}</text>`);
  const y1 = top + arms.length * rowH;
  o.push(`<g class="grid">`);
  for (let t = 0; t <= 1.0001; t += 0.2) o.push(`<line x1="${n2(sx(t))}" y1="${top}" x2="${n2(sx(t))}" y2="${y1}"/>`);
  o.push(`</g><g class="axis">`);
  o.push(`<line x1="${left}" y1="${y1}" x2="${left + plotW}" y2="${y1}"/>`);
  for (let t = 0; t <= 1.0001; t += 0.2) o.push(`<text x="${n2(sx(t))}" y="${y1 + 16}" text-anchor="middle">${Math.round(t * 100)}%</text>`);
  o.push(`<text x="${left + plotW / 2}" y="${y1 + 36}" text-anchor="middle">test accuracy</text>`);
  o.push(`</g>`);
  if (refs.length) {
    o.push(`<g class="ref">`);
    refs.forEach((r) => o.push(`<line x1="${n2(sx(r.value))}" y1="${top - 4}" x2="${n2(sx(r.value))}" y2="${y1}"><title>${esc(r.label)}</title></line>`));
    o.push(`<text x="${left}" y="${y1 + 54}">${esc(`dashed: ${refs.map((r) => r.label.replace(/^paper: /, '')).join(', ')} (the paper, §8.1)`)}</text>`);
    o.push(`</g>`);
  }
  arms.forEach((a, i) => {
    const cy = top + i * rowH + rowH / 2;
    const c = armColour(results, a);
    const name = a.name.length > 32 ? `${a.name.slice(0, 31)}…` : a.name;
    o.push(`<text x="${left - 8}" y="${cy}" text-anchor="end" dominant-baseline="middle">${esc(name)}<title>${esc(`${a.name} (${a.role})`)}</title></text>`);
    if (Number.isFinite(a.mean)) {
      o.push(`<rect x="${left}" y="${n2(cy - 8)}" width="${n2(sx(a.mean) - left)}" height="16" fill="${c}" fill-opacity="0.35"><title>${esc(`${a.name}: ${armCell(a)}`)}</title></rect>`);
      if (Number.isFinite(a.std) && a.std > 0)
        o.push(`<line x1="${n2(sx(a.mean - a.std))}" y1="${cy}" x2="${n2(sx(a.mean + a.std))}" y2="${cy}" stroke="${c}" stroke-width="1.5"/>`);
    }
    for (const s of a.seeds)
      if (Number.isFinite(s.final_accuracy))
        o.push(`<circle cx="${n2(sx(s.final_accuracy))}" cy="${cy}" r="3.5" fill="${c}" stroke="#fff" stroke-width="0.8"><title>${esc(`${a.name} seed ${s.seed}: ${pct(s.final_accuracy)}%`)}</title></circle>`);
  });
  o.push(`</svg>`);
  return o.join('\n');
}

function taskCharts(results: ExperimentResults, task: string): string {
  const arms = results.arms.filter((a) => a.task === task);
  const seeds = [...new Set(arms.flatMap((a) => a.seeds.map((s) => s.seed)))].sort((a, b) => a - b);
  type Seed = ArmSummary['seeds'][number];
  const series = (pick: (s: Seed) => [number, number][], what: (s: Seed) => string): Series[] =>
    arms.flatMap((a) =>
      a.seeds.map((s) => {
        const st = seedStyle(seeds.indexOf(s.seed));
        return {
          arm: a,
          seed: s.seed,
          colour: armColour(results, a),
          dash: st.dash,
          opacity: st.opacity,
          points: pick(s),
          title: `${a.name}, seed ${s.seed}: ${what(s)}`,
        };
      }),
    );
  const legend = [
    ...arms.map((a) => ({ colour: armColour(results, a), label: `${a.name} (${a.role})` })),
    ...(seeds.length > 1 ? seeds.map((s, i) => ({ colour: '#555', label: `seed ${s}`, ...seedStyle(i) })) : []),
  ];
  const acc = lineChart({
    title: 'Test accuracy against step (one line per arm × seed)',
    xLabel: 'stage-2 step',
    yLabel: 'test accuracy',
    yRange: [0, 1],
    yFormat: (v) => `${Math.round(v * 100)}%`,
    series: series((s) => s.curve, (s) => `final test accuracy ${pct(s.final_accuracy)}%`),
    refs: paperLines(task),
    legend,
  });
  const loss = lineChart({
    title: 'Training loss against step',
    xLabel: 'stage-2 step',
    yLabel: 'training loss',
    autoLog: true,
    series: series((s) => s.loss_curve, () => 'training loss'),
    legend,
  });
  return `${finalsChart(results, task)}\n<div class="pair">\n${acc}\n${loss}\n</div>`;
}

/** A semantic task in report.html: its table, the data saved, validation loss (and DM-Math problem accuracy) against tokens. */
function semanticSection(results: ExperimentResults, task: string): string {
  const arms = results.arms.filter((a) => a.task === task);
  const d = results.data_saved?.find((x) => x.task === task);
  const seeds = [...new Set(arms.flatMap((a) => a.seeds.map((s) => s.seed)))].sort((a, b) => a - b);
  type Seed = ArmSummary['seeds'][number];
  const series = (pick: (s: Seed) => [number, number][], what: string): Series[] =>
    arms.flatMap((a) =>
      a.seeds.map((s) => {
        const st = seedStyle(seeds.indexOf(s.seed));
        return { arm: a, seed: s.seed, colour: armColour(results, a), dash: st.dash, opacity: st.opacity, points: pick(s), title: `${a.name}, seed ${s.seed}: ${what}` };
      }),
    );
  const legend = [
    ...arms.map((a) => ({ colour: armColour(results, a), label: `${a.name} (${a.role})` })),
    ...(seeds.length > 1 ? seeds.map((s, i) => ({ colour: '#555', label: `seed ${s}`, ...seedStyle(i) })) : []),
  ];
  const o: string[] = [];
  o.push(tableHtml(semanticTable(results, task)));
  if (d) o.push(dataSavedText(d).split('\n').map((l) => `<p class="note">${esc(l)}</p>`).join('\n'));
  else o.push(`<p class="note">No baseline arm: nothing to measure the data saved against.</p>`);
  const charts = [
    lineChart({
      title: 'Validation loss against training tokens (one line per arm × seed)',
      xLabel: 'stage-2 training tokens',
      yLabel: 'validation loss',
      autoLog: true,
      series: series((s) => (s.semantic ? s.semantic.evals.map((e) => [e[1], e[2]] as [number, number]) : []), 'validation loss'),
      refs: d ? [{ label: `baseline final loss ${d.target_loss.toFixed(3)}`, value: d.target_loss }] : [],
      legend,
    }),
  ];
  if (task === 'deepmind_math')
    charts.push(
      lineChart({
        title: 'Problem accuracy against training tokens',
        xLabel: 'stage-2 training tokens',
        yLabel: 'problem accuracy',
        yRange: [0, 1],
        yFormat: (v) => `${Math.round(v * 100)}%`,
        series: series((s) => (s.semantic ? s.semantic.evals.map((e) => [e[1], e[4] ?? NaN] as [number, number]) : []), 'problem accuracy'),
        legend,
      }),
    );
  else
    charts.push(
      lineChart({
        title: 'Training loss against step',
        xLabel: 'stage-2 step',
        yLabel: 'training loss',
        autoLog: true,
        series: series((s) => s.loss_curve, 'training loss'),
        legend,
      }),
    );
  o.push(`<div class="pair">\n${charts.join('\n')}\n</div>`);
  return o.join('\n');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:24px auto;max-width:1600px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px}
.meta{color:#555;margin:0 0 16px}.meta b{color:#222}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
tr.paper td{color:#777;font-style:italic;background:#fafafa}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:6px 10px;margin:4px 0}
.note{color:#555}
.pair{display:flex;flex-wrap:wrap;gap:8px}
svg.chart{font-size:11px;background:#fff;border:1px solid #eee;margin:4px 0}
svg .ctitle{font-size:13px;font-weight:600}
svg .grid line{stroke:#eee}svg .axis line{stroke:#888}svg .axis text,svg .legend text{fill:#333}
svg .ref line{stroke:#999;stroke-dasharray:5 4;stroke-width:1.2}svg .ref text{fill:#666;font-size:10px;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .series path{fill:none;stroke-width:1.8;stroke-linejoin:round}
svg .nodata{fill:#aaa;font-size:14px}
`;

/** report.html text. */
export function htmlReport(results: ExperimentResults): string {
  const o: string[] = [];
  o.push('<!DOCTYPE html>');
  o.push('<html lang="en">\n<head>\n<meta charset="utf-8">');
  o.push(`<title>${esc(`kindling · ${results.experiment}`)}</title>`);
  o.push(`<style>${CSS}</style>\n</head>\n<body>`);
  o.push(`<h1>Experiment ${esc(results.experiment)}</h1>`);
  o.push(
    `<p class="meta">Machine: <b>${esc(results.machine || '–')}</b> · elapsed <b>${esc(fmtDuration(results.elapsed_s))}</b> · ` +
      `runs completed <b>${results.runs.completed} / ${results.runs.planned}</b></p>`,
  );
  const algo = algorithmicOnly(results);
  if (algo.arms.length || results.arms.length === 0) {
    o.push(`<h2>Final test accuracy (%, mean ± std over seeds)</h2>`);
    o.push(tableHtml(paperTable(algo)));
  }
  const warnings = stage1Warnings(results);
  for (const w of warnings) o.push(`<p class="warn">⚠ ${esc(w)}</p>`);
  o.push(`<h2>Arms</h2>`);
  o.push(tableHtml(armTable(results)));
  o.push(`<p class="note">${results.arms.some((a) => a.seeds.some((x) => !x.completed)) ? '* = run not completed (partial record). ' : ''}Stage 1: ✓ learned its language in every seed, ✗ not.</p>`);
  for (const task of tasksOf(results)) {
    o.push(`<h2>${esc(taskLabel(task))}</h2>`);
    if (isSemanticTask(task)) {
      o.push(semanticSection(results, task));
      continue;
    }
    if (PAPER[task]) o.push(`<p class="note">Dashed grey: the paper's values (§8.1).</p>`);
    o.push(taskCharts(results, task));
    if (isNeedle(task)) {
      o.push(`<h3>Per-seed test accuracy (%) at checkpoints</h3>`);
      o.push(`<p class="note">The needle effect is a sudden jump in single seeds: read the rows, not only the means.</p>`);
      o.push(tableHtml(checkpointTable(results, task)));
      o.push(`<h3>Seeds that jumped (≥ 50%)</h3>`);
      o.push(tableHtml(jumpTable(results, task)));
    }
  }
  if (results.arms.length === 0) o.push(`<p class="note">No runs.</p>`);
  o.push('</body>\n</html>\n');
  return o.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Files

/**
 * Write `dir/results.json` (2-space JSON; NaN is written as null), `dir/results.md` and
 * `dir/report.html`. Returns the Markdown paper table and the path of the HTML report.
 */
export function writeReports(dir: string, results: ExperimentResults): { table: string; html: string } {
  makeDirs(dir);
  writeFileSync(join(dir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(dir, 'results.md'), markdownReport(results));
  const html = join(dir, 'report.html');
  writeFileSync(html, htmlReport(results));
  const semantic = tasksOf(results).filter(isSemanticTask);
  const table = [
    ...(semantic.length < tasksOf(results).length ? [tableMd(paperTable(algorithmicOnly(results)))] : []),
    ...semantic.map((t) => tableMd(semanticTable(results, t))),
  ].join('\n\n');
  return { table, html };
}

/** The experiment's name: `dir/experiment.json`'s `name` if present, else the directory's name. */
function experimentName(dir: string): string {
  const file = join(dir, 'experiment.json');
  if (existsSync(file)) {
    let meta: unknown;
    try {
      meta = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: malformed JSON (${(e as Error).message})`);
    }
    const name = (meta as { name?: unknown } | null)?.name;
    if (typeof name === 'string' && name.length > 0) return name;
  }
  return basename(resolve(dir));
}

/** `kindling experiment report DIR`: read the runs under DIR, aggregate them and write the reports. */
export function reportDirectory(dir: string): { results: ExperimentResults; table: string; html: string } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such experiment directory`);
  const records = readRunRecords(dir);
  if (records.length === 0) {
    throw new Error(`${dir}: no result.json under ${join(dir, 'runs')} (has the experiment run? each finished run writes runs/…/result.json)`);
  }
  const results = aggregate(records, experimentName(dir));
  const { table, html } = writeReports(dir, results);
  return { results, table, html };
}
