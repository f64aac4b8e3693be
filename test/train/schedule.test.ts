// Learning-rate schedules against the spec's values (§10 "Learning-rate values"), hand-computed points
// of every formula, and the schedule of the PyTorch golden run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  algorithmicDownstreamSchedule,
  c4Schedule,
  codeparrotSchedule,
  deepmindMathSchedule,
  describeSchedule,
  hfFactor,
  lrFactor,
  makeSchedule,
  needleSchedule,
  proceduralFactor,
  proceduralSchedule,
  type ScheduleSpec,
} from '../../src/train/schedule.ts';

/** |a - b| <= 1e-12 · max(|b|, 1e-300) — double-precision agreement. */
function close(a: number, b: number): void {
  expect(Math.abs(a - b), `${a} vs ${b}`).toBeLessThanOrEqual(1e-12 * Math.max(Math.abs(b), 1e-300));
}

describe('spec §10 learning-rate values', () => {
  it('needle / addition (HF cosine, warmup 500, max 10k steps, lr 1e-3)', () => {
    const lr = makeSchedule(needleSchedule());
    close(lr(250), 5e-4);
    close(lr(500), 1e-3);
    close(lr(5250), 5e-4);
    expect(lr(10000)).toBe(0);
    expect(lr(0)).toBe(0);
  });

  it('C4 (cosine with floor 0.1, lr 5e-4, no warmup, 10k steps)', () => {
    const lr = makeSchedule(c4Schedule());
    close(lr(0), 5e-4);
    close(lr(5000), 2.75e-4);
    close(lr(10000), 5e-5);
    // f = 0.1 + 0.9·½(1 + cos(π s/10000)) at a few more points
    for (const s of [1, 1234, 7777, 9999]) close(lr(s), 5e-4 * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * s) / 10000))));
  });

  it('multiplication: max_steps 156,250, warmup 500', () => {
    const lr = makeSchedule(algorithmicDownstreamSchedule(156_250));
    close(lr(100), 2e-4);
    close(lr(500 + (156_250 - 500) / 2), 5e-4);
    expect(lr(156_250)).toBe(0);
  });
});

describe('procedural family (§4: the reference get_lr_scheduler, floor 0.1)', () => {
  it('cosine with warmup', () => {
    const f = (s: number) => proceduralFactor('cosine', s, 10, 110);
    expect(f(0)).toBe(0);
    close(f(5), 0.5);
    expect(f(10)).toBe(1);
    close(f(35), 0.5 * (1 + Math.cos(Math.PI * 0.25)));
    close(f(60), 0.5);
    close(f(85), 0.5 * (1 + Math.cos(Math.PI * 0.75)));
    // 0.5(1 + cos(0.9π)) = 0.0245 < 0.1 → floor
    expect(f(100)).toBe(0.1);
    expect(f(109)).toBe(0.1);
    expect(f(110)).toBe(0.1);
    expect(f(1e6)).toBe(0.1);
  });

  it('linear and constant, and the s ≥ total branch for every kind', () => {
    const lin = (s: number) => proceduralFactor('linear', s, 10, 110);
    close(lin(60), 0.5);
    close(lin(30), 0.8);
    close(lin(100), 0.1);
    expect(lin(105)).toBe(0.1); // 1 - 0.95 = 0.05 → floor
    expect(proceduralFactor('constant', 3, 10, 110)).toBeCloseTo(0.3, 15);
    expect(proceduralFactor('constant', 50, 10, 110)).toBe(1);
    expect(proceduralFactor('constant', 110, 10, 110)).toBe(0.1);
  });

  it('no warmup: f(0) = 1; the shipped configs (constant 5e-4, total 2501) never reach the tail', () => {
    expect(proceduralFactor('cosine', 0, 0, 100)).toBe(1);
    const lr = makeSchedule(proceduralSchedule({ totalSteps: 2501 }));
    for (const s of [0, 1, 500, 2500]) expect(lr(s)).toBe(5e-4);
    close(lr(2501), 5e-5);
    // Dyck: total = max_steps = 501
    expect(makeSchedule(proceduralSchedule({ totalSteps: 501 }))(500)).toBe(5e-4);
  });

  it('warmup uses max(1, w) like the reference', () => {
    expect(proceduralFactor('linear', 0, 1, 10)).toBe(0);
    expect(proceduralFactor('linear', 1, 1, 10)).toBe(1);
  });
});

describe('HF family (transformers get_scheduler)', () => {
  it('linear: warmup then (total − s)/(total − w), clamped at 0', () => {
    const f = (s: number) => hfFactor('linear', s, 100, 1100);
    close(f(50), 0.5);
    expect(f(100)).toBe(1);
    close(f(600), 0.5);
    expect(f(1100)).toBe(0);
    expect(f(2000)).toBe(0);
  });

  it('cosine rises again past total (as transformers does); cosine_with_min_lr floors at r', () => {
    close(hfFactor('cosine', 1500, 0, 1000), 0.5);
    close(hfFactor('cosine_with_min_lr', 500, 0, 1000, { minLrRate: 0.2 }), 0.2 + 0.8 * 0.5);
    close(hfFactor('cosine_with_min_lr', 1000, 0, 1000, { minLrRate: 0.2 }), 0.2);
    close(hfFactor('cosine_with_min_lr', 5, 10, 1000, { minLrRate: 0.2 }), 0.5); // warmup is not floored
  });

  it('constant ignores warmup; constant_with_warmup does not', () => {
    expect(hfFactor('constant', 0, 100, 1000)).toBe(1);
    expect(hfFactor('constant_with_warmup', 25, 100, 1000)).toBe(0.25);
    expect(hfFactor('constant_with_warmup', 5000, 100, 1000)).toBe(1);
  });

  it('cosine_with_restarts and polynomial', () => {
    close(hfFactor('cosine_with_restarts', 500, 0, 1000, { numCycles: 2 }), 1);
    close(hfFactor('cosine_with_restarts', 250, 0, 1000, { numCycles: 2 }), 0.5);
    expect(hfFactor('cosine_with_restarts', 1000, 0, 1000)).toBe(0);
    close(hfFactor('polynomial', 500, 0, 1000, { baseLr: 1e-3, lrEnd: 1e-7 }), (0.5 * (1e-3 - 1e-7) + 1e-7) / 1e-3);
    close(hfFactor('polynomial', 750, 0, 1000, { baseLr: 1e-3, lrEnd: 0, power: 2 }), 0.0625);
    close(hfFactor('polynomial', 2000, 0, 1000, { baseLr: 1e-3 }), 1e-4);
    expect(() => hfFactor('polynomial', 1, 0, 10)).toThrow(/baseLr/);
  });

  it('matches the learning rates of the PyTorch golden run (warmup 3, cosine over 10 steps)', () => {
    for (const v of ['tied', 'untied']) {
      const meta = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', 'golden', `gpt_${v}.json`), 'utf8')) as {
        lrs: number[];
        optimizer: { lr: number; warmup_steps: number; total_steps: number };
      };
      const lr = makeSchedule({ family: 'hf', kind: 'cosine', baseLr: meta.optimizer.lr, warmupSteps: meta.optimizer.warmup_steps, totalSteps: meta.optimizer.total_steps });
      meta.lrs.forEach((x, s) => close(lr(s), x));
    }
  });

  it('CodeParrot / DM-Math presets: cosine to 0 over 50k steps from 5e-5', () => {
    const lr = makeSchedule(codeparrotSchedule());
    expect(lr(0)).toBe(5e-5);
    close(lr(25_000), 2.5e-5);
    expect(lr(50_000)).toBe(0);
    expect(deepmindMathSchedule()).toEqual(codeparrotSchedule());
  });
});

describe('validation', () => {
  it('rejects bad steps, kinds and rates', () => {
    expect(() => proceduralFactor('cosine', -1, 0, 10)).toThrow(/step must be a non-negative integer/);
    expect(() => proceduralFactor('cosine', 1.5, 0, 10)).toThrow(/step/);
    expect(() => proceduralFactor('exp' as never, 1, 0, 10)).toThrow(/unknown procedural lr_schedule "exp"/);
    expect(() => hfFactor('exp' as never, 1, 0, 10)).toThrow(/unknown lr_scheduler_type "exp"/);
    const bad = (spec: Partial<ScheduleSpec>) => () => makeSchedule({ family: 'hf', kind: 'cosine', baseLr: 1e-3, warmupSteps: 0, totalSteps: 10, ...spec } as ScheduleSpec);
    expect(bad({ baseLr: -1 })).toThrow(/learning rate/);
    expect(bad({ baseLr: NaN })).toThrow(/learning rate/);
    expect(bad({ warmupSteps: -2 })).toThrow(/warmup_steps/);
    expect(bad({ totalSteps: 2.5 })).toThrow(/total steps/);
    expect(bad({ kind: 'cosine_with_min_lr', minLrRate: 2 } as never)).toThrow(/min_lr_rate/);
    expect(bad({ family: 'x' } as never)).toThrow(/unknown schedule family/);
  });

  it('lrFactor dispatches on the family; describeSchedule is readable', () => {
    expect(lrFactor(proceduralSchedule({ totalSteps: 10 }), 10)).toBe(0.1);
    expect(lrFactor(needleSchedule(), 10000)).toBe(0);
    expect(describeSchedule(c4Schedule())).toBe('hf cosine_with_min_lr: lr 0.0005, warmup 0, total 10000, min_lr_rate 0.1');
  });
});
