// The reports: results.md's tables (exact cells), report.html's SVG (well-formed, finite paths, one line
// per arm × seed, escaped labels), degenerate inputs, and `reportDirectory` end to end on a temp dir.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aggregate } from '../../src/experiments/aggregate.ts';
import {
  checkpointSteps,
  fmtDuration,
  htmlReport,
  jumpTable,
  markdownReport,
  reportDirectory,
  stage1Warnings,
  writeReports,
} from '../../src/experiments/report.ts';
import type { RunRecord } from '../../src/experiments/types.ts';
import { curveTo, needleSet, record, stage1 } from './fixtures.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kindling-report-'));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The cells of the Markdown table row whose first cell is `first`. */
function mdRow(md: string, first: string): string[] | undefined {
  for (const line of md.split('\n')) {
    if (!line.startsWith('| ')) continue;
    const cells = line.slice(2, -2).split(' | ');
    if (cells[0] === first) return cells;
  }
  return undefined;
}

/** Every <svg>…</svg> of the page. */
function svgs(html: string): string[] {
  return html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
}

/** Tags balance (void/self-closing ones aside); throws with the first mismatch. */
function checkBalanced(xml: string): void {
  const stack: string[] = [];
  const VOID = new Set(['meta', 'br', 'hr', 'img', 'link', 'input']);
  for (const m of xml.matchAll(/<(\/?)([A-Za-z][\w:-]*)([^<>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self || VOID.has(name.toLowerCase())) continue;
    if (!close) stack.push(name);
    else if (stack.pop() !== name) throw new Error(`unbalanced </${name}> at ${m.index}`);
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  // No stray angle brackets left in text.
  const text = xml.replace(/<!DOCTYPE[^>]*>/, '').replace(/<(\/?)([A-Za-z][\w:-]*)([^<>]*?)(\/?)>/g, '');
  expect(text).not.toMatch(/[<>]/);
}

/** The `d` of every path, checked to hold only M/L commands and finite numbers. */
function checkPaths(svg: string): number {
  let n = 0;
  for (const m of svg.matchAll(/<path\b[^>]*\bd="([^"]*)"/g)) {
    n++;
    const d = m[1];
    expect(d).toMatch(/^M/);
    const nums = d.replace(/[ML]/g, ' ').trim().split(/\s+/);
    expect(nums.length % 2).toBe(0);
    for (const x of nums) expect(Number.isFinite(Number(x)), `${x} in ${d}`).toBe(true);
  }
  return n;
}

describe('results.md', () => {
  const results = aggregate(needleSet(), 'needle-demo');
  const md = markdownReport(results);

  it('the paper-style table: best shuffled | no pretraining | best procedural (arm), in percent', () => {
    expect(mdRow(md, 'Downstream task')).toEqual(['Downstream task', 'Best shuffled', 'No pretraining', 'Best procedural']);
    expect(mdRow(md, 'Context recall / needle (condattendstream_30)')).toEqual([
      'Context recall / needle (condattendstream_30)',
      '8.0 ± 0.8 (best 9.0, 3 seeds)',
      '11.0 ± 0.8 (best 12.0, 3 seeds)',
      'dyck: 34.5 ± 40.7 (best 92.0, 3 seeds)',
    ]);
    expect(mdRow(md, '↳ paper (§8.1)')).toEqual(['↳ paper (§8.1)', '10.3', '11.3', 'k-Dyck: 96.9']);
    expect(md.startsWith('# Experiment needle-demo\n')).toBe(true);
    expect(md).toContain('Runs: 9 of 9 completed · elapsed 1 min 30 s · machine: H200 (host a)');
  });

  it('the per-arm table: role, task, stage 1, mean, std, best seed, per-seed finals', () => {
    expect(mdRow(md, 'none')).toEqual(['none', 'baseline', 'condattendstream_30', '–', '11.0', '0.8', 's2 12.0', 's0 10.0, s1 11.0, s2 12.0']);
    expect(mdRow(md, 'dyck')).toEqual(['dyck', 'procedural', 'condattendstream_30', '✓ closing 0.89', '34.5', '40.7', 's0 92.0', 's0 92.0, s1 6.4, s2 5.0']);
    expect(mdRow(md, 'dyck-shuffled')?.[3]).toBe('✗ closing 0.32');
  });

  it('per-seed needle accuracy at ≤ 6 checkpoints shows the jump of the single seed', () => {
    const header = md.split('\n').find((l) => l.startsWith('| Arm | Seed |'));
    expect(header).toBe('| Arm | Seed | 1k steps | 2k steps | 3k steps | 4k steps | ≥ 50% at step |');
    expect(md).toContain('| dyck | 0 | 3.3 | 92.0 | 92.0 | 92.0 | 2000 |');
    expect(md).toContain('| dyck | 1 | 3.1 | 4.2 | 5.3 | 6.4 | – |');
    const dyck = results.arms.find((a) => a.name === 'dyck')!;
    expect(dyck.seeds.map((s) => s.steps_to_half)).toEqual([2000, null, null]);
  });

  it('seeds that jumped per arm: count, median step (range), Fisher p against the baseline', () => {
    expect(md).toContain('| Arm | Role | Seeds ≥ 50% | Step reaching 50%: median (range) | Fisher p vs none (two-sided) |');
    expect(mdRow(md, 'none')?.length).toBe(8); // the arm table's row comes first
    const jump = (arm: string) => md.split('\n').find((l) => l.startsWith(`| ${arm} | `) && l.includes(' of '));
    expect(jump('none')).toBe('| none | baseline | 0 of 3 | – | – |');
    // 1 of 3 against 0 of 3: p = 1 (math.comb).
    expect(jump('dyck')).toBe('| dyck | procedural | 1 of 3 | 2000 | 1.00 |');
    expect(jump('dyck-shuffled')).toBe('| dyck-shuffled | shuffled | 0 of 3 | – | 1.00 |');
    // 7 of 8 finished seeds jumping at 500–3500, an unfinished one that has not jumped yet (left out)
    // and an unfinished one that jumped (counted): 8 of 9 against 0 of 8, p = 0.00041135 (math.comb).
    const recs: RunRecord[] = [];
    for (let seed = 0; seed < 8; seed++) recs.push(record({ arm: 'none', role: 'baseline', seed, curve: curveTo(0.12), final_accuracy: 0.12, stage1: null }));
    const jumps = [500, 1000, 1000, 1500, 2000, 3000, 3500, undefined];
    jumps.forEach((at, seed) => recs.push(record({ arm: 'sort', seed, curve: curveTo(at === undefined ? 0.13 : 0.95, 4000, at), final_accuracy: at === undefined ? 0.13 : 0.95 })));
    recs.push(record({ arm: 'sort', seed: 8, curve: curveTo(0.05, 1500, 999999), final_accuracy: 0.05, completed: false }));
    recs.push(record({ arm: 'sort', seed: 9, curve: curveTo(0.9, 1500, 1500), final_accuracy: 0.9, completed: false }));
    const t = jumpTable(aggregate(recs, 'e'), 'condattendstream_30');
    expect(t.rows).toEqual([
      ['none', 'baseline', '0 of 8', '–', '–'],
      ['sort', 'procedural', '8 of 9', '1500 (500–3500)', '4.1e-4'],
    ]);
  });

  it('durations round once: seconds never read 60', () => {
    expect(fmtDuration(12.34)).toBe('12.3 s');
    expect(fmtDuration(59.96)).toBe('1 min 00 s');
    expect(fmtDuration(1499.6)).toBe('25 min 00 s');
    expect(fmtDuration(1499.4)).toBe('24 min 59 s');
    expect(fmtDuration(3599.7)).toBe('1 h 00 min');
    expect(fmtDuration(4020)).toBe('1 h 07 min');
    expect(fmtDuration(Number.NaN)).toBe('–');
  });

  it('checkpoint steps: all if ≤ 6, else round multiples snapped to evaluation steps', () => {
    expect(checkpointSteps([0, 100, 200, 300])).toEqual([100, 200, 300]);
    const every500 = Array.from({ length: 21 }, (_, i) => i * 500);
    expect(checkpointSteps(every500)).toEqual([2000, 4000, 6000, 8000, 10000]);
    expect(checkpointSteps(every500.filter((s) => s <= 4000))).toEqual([1000, 2000, 3000, 4000]);
    expect(checkpointSteps([0, 7, 333, 1001, 2500, 2600, 3001, 4999, 6000])).toEqual([1001, 2500, 3001, 4999, 6000]);
    expect(checkpointSteps([])).toEqual([]);
  });

  it('a warning for every procedural arm whose stage 1 did not learn (not for the shuffled or uniform controls)', () => {
    expect(stage1Warnings(results)).toEqual([]);
    const recs = needleSet();
    for (const seed of [0, 1]) {
      recs.push(record({ arm: 'dyck-k64', seed, stage1: stage1({ learned: false, closing_accuracy: seed ? 0.52 : 0.5 }) }));
      recs.push(
        record({ arm: 'union', seed, stage1: stage1({ task: 'union', learned: seed === 0, closing_accuracy: null, accuracy: 0.4, settings: { learned_threshold: 0.9 } }) }),
      );
      // The uniform task has nothing to learn: never learned, never warned about.
      recs.push(record({ arm: 'uniform', seed, stage1: stage1({ task: 'uniform', learned: false, closing_accuracy: null, accuracy: 0.06, settings: { task: 'uniform', vocab_size: 17 } }) }));
    }
    const w = stage1Warnings(aggregate(recs, 'e'));
    expect(w).toEqual([
      'dyck-k64: stage 1 did not learn its language (closing accuracy 0.51 < threshold): its transfer says nothing',
      'union: stage 1 did not learn its language (token accuracy 0.40 < threshold 0.9) in some seeds: its transfer says nothing',
    ]);
    expect(markdownReport(aggregate(recs, 'e'))).toContain(`- ⚠ ${w[0]}`);
  });
});

describe('report.html', () => {
  const evil = '<script>alert("x")</script> & co';
  function records(): RunRecord[] {
    const recs = needleSet();
    // A second task: an arm with a hostile name, a NaN-riddled arm, a one-point arm, an empty arm.
    for (const seed of [0, 1]) {
      recs.push(
        record({
          arm: evil,
          seed,
          task: 'additionstream_10',
          curve: curveTo(0.8 + seed / 100, 10000),
          loss_curve: Array.from({ length: 3000 }, (_, i) => [i + 1, 3 * Math.exp(-i / 500) + 0.01] as [number, number]),
        }),
      );
    }
    recs.push(record({ arm: 'nan', seed: 0, task: 'additionstream_10', curve: [[0, NaN], [500, 0.3], [1000, NaN], [1500, 0.4]], loss_curve: [[1, NaN], [2, Infinity], [3, 1]], final_accuracy: NaN }));
    recs.push(record({ arm: 'single', seed: 0, task: 'additionstream_10', curve: [[0, 0.05]], loss_curve: [[10, 2]] }));
    recs.push(record({ arm: 'empty', role: 'baseline', seed: 0, task: 'additionstream_10', curve: [], loss_curve: [], eval_loss_curve: [], completed: false }));
    return recs;
  }
  const results = aggregate(records(), 'html <demo>');
  const html = htmlReport(results);

  it('explains the partial-run mark only when a run is partial', () => {
    expect(html).toContain('* = run not completed');
    expect(markdownReport(results)).toContain('* = run not completed');
    const complete = aggregate(needleSet(), 'complete');
    expect(htmlReport(complete)).not.toContain('* = run not completed');
    expect(markdownReport(complete)).not.toContain('* = run not completed');
  });

  it('is well formed: balanced tags, no stray brackets, no script, no external reference', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    checkBalanced(html);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)=|url\(|@import/);
    expect(html).toContain('<h1>Experiment html &lt;demo&gt;</h1>');
  });

  it('labels are escaped: a hostile arm name appears only escaped', () => {
    expect(html).not.toContain(evil);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co');
  });

  it('per task: a finals chart, an accuracy chart and a loss chart, one path per arm × seed with data', () => {
    const all = svgs(html);
    expect(all).toHaveLength(6);
    for (const s of all) checkBalanced(s);
    const [, needleAcc, needleLoss, , addAcc, addLoss] = all;
    // needle: 3 arms × 3 seeds; addition: 2 + nan + single (the empty arm draws nothing).
    expect(checkPaths(needleAcc)).toBe(9);
    expect(checkPaths(needleLoss)).toBe(9);
    expect(checkPaths(addAcc)).toBe(4);
    expect(checkPaths(addLoss)).toBe(4);
    const runs = [...needleAcc.matchAll(/<path class="run" data-arm="([^"]*)" data-seed="(\d+)"/g)].map((m) => `${m[1]}/${m[2]}`);
    expect(runs).toEqual(['none/0', 'none/1', 'none/2', 'dyck/0', 'dyck/1', 'dyck/2', 'dyck-shuffled/0', 'dyck-shuffled/1', 'dyck-shuffled/2']);
    // Seeds of an arm share the colour and differ in dash.
    const dyck = [...needleAcc.matchAll(/data-arm="dyck" [^>]*stroke="(#[0-9a-f]+)"[^>]*?(stroke-dasharray="[^"]*")?>/g)];
    expect(new Set(dyck.map((m) => m[1])).size).toBe(1);
    expect(new Set(dyck.map((m) => m[2] ?? 'solid')).size).toBe(3);
    // The single point gets a dot; the paper's values are drawn as reference lines with labels.
    expect(addAcc).toMatch(/<circle /);
    expect(needleAcc).toContain('paper: no pretraining 11.3%');
    expect(needleAcc).toContain('paper: k-Dyck 96.9%');
    expect(needleAcc).toContain('paper: shuffled 10.3%');
    expect(addAcc).toContain('paper: ECA 91.0%');
    // Training loss spanning > 10× is drawn on a log scale.
    expect(addLoss).toContain('training loss (log scale)');
  });

  it('NaN points are skipped, and the loss of a narrow range stays linear', () => {
    const nan = svgs(html)[4].match(/<path class="run" data-arm="nan"[^>]*d="([^"]*)"/)![1];
    expect(nan.split(/[ML]/).filter(Boolean)).toHaveLength(2);
    const narrow = htmlReport(aggregate([record({ arm: 'a', seed: 0, loss_curve: [[1, 2], [2, 1.5], [3, 1]] })], 'e'));
    expect(svgs(narrow)[2]).toContain('>training loss</text>');
  });

  it('degenerate inputs do not throw: no arms, empty curves only, one seed', () => {
    const none = htmlReport(aggregate([], 'empty'));
    checkBalanced(none);
    expect(svgs(none)).toHaveLength(0);
    const emptyCurves = aggregate([record({ arm: 'a', seed: 0, curve: [], loss_curve: [], final_accuracy: NaN })], 'e');
    const h = htmlReport(emptyCurves);
    checkBalanced(h);
    expect(h).toContain('no data');
    expect(markdownReport(emptyCurves)).toContain('| a | procedural | condattendstream_30 | ✓ closing 0.89 | – | – | s0 – | s0 – |');
  });
});

describe('writeReports and reportDirectory', () => {
  it('writes results.json (2-space), results.md and report.html, and returns the table and the html path', () => {
    const d = tmp();
    const results = aggregate(needleSet(), 'demo');
    const out = writeReports(d, results);
    expect(out.html).toBe(join(d, 'report.html'));
    const json = readFileSync(join(d, 'results.json'), 'utf8');
    expect(json).toBe(JSON.stringify(results, null, 2) + '\n');
    expect(JSON.parse(json).arms).toHaveLength(3);
    expect(readFileSync(join(d, 'results.md'), 'utf8')).toContain(out.table);
    expect(out.table.split('\n')).toHaveLength(4);
    expect(existsSync(out.html)).toBe(true);
  });

  it('reads runs/**/result.json, names the experiment from experiment.json or the directory', () => {
    const d = tmp();
    for (const r of needleSet()) {
      const dir = join(d, 'runs', r.arm, `seed${r.seed}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'result.json'), JSON.stringify(r));
    }
    const a = reportDirectory(d);
    expect(a.results.experiment).toBe(d.split('/').pop());
    expect(a.results.runs).toEqual({ planned: 9, completed: 9 });
    expect(a.table).toContain('dyck: 34.5 ± 40.7 (best 92.0, 3 seeds)');
    writeFileSync(join(d, 'experiment.json'), JSON.stringify({ name: 'needle-quick', file: 'experiments/needle.yaml' }));
    const b = reportDirectory(d);
    expect(b.results.experiment).toBe('needle-quick');
    expect(readFileSync(join(d, 'results.md'), 'utf8').startsWith('# Experiment needle-quick')).toBe(true);
    expect(JSON.parse(readFileSync(join(d, 'results.json'), 'utf8')).experiment).toBe('needle-quick');
  });

  it('fails clearly without results', () => {
    const d = tmp();
    expect(() => reportDirectory(d)).toThrow(/no result\.json under/);
    expect(() => reportDirectory(join(d, 'missing'))).toThrow(/no such experiment directory/);
  });
});
