// Constructed run records for the aggregation and report tests.
import type { ArmRole, RunRecord, Stage1Record } from '../../src/experiments/types.ts';

export function stage1(over: Partial<Stage1Record> = {}): Stage1Record {
  return {
    task: 'dyck',
    settings: { task: 'dyck', k: 2, seq_len: 128, steps: 4000, batch_size: 256, lr: 0.001 },
    learned: true,
    closing_accuracy: 0.89,
    accuracy: 0.6,
    steps: 4000,
    elapsed_s: 100,
    ...over,
  };
}

export function record(over: Partial<RunRecord> & { arm: string; seed: number }): RunRecord {
  const curve = over.curve ?? [
    [0, 0.01],
    [1000, 0.05],
    [2000, 0.08],
  ];
  return {
    experiment: 'test',
    role: 'procedural' as ArmRole,
    task: 'condattendstream_30',
    point: {},
    stage1: over.role === 'baseline' ? null : stage1(),
    final_accuracy: curve.length ? curve[curve.length - 1][1] : 0,
    curve,
    loss_curve: [
      [100, 4.5],
      [1000, 2.0],
      [2000, 0.3],
    ],
    eval_loss_curve: [
      [0, 5],
      [1000, 2.1],
      [2000, 0.4],
    ],
    elapsed_s: 10,
    machine: 'H200 (host a)',
    completed: true,
    ...over,
  };
}

/** Accuracy curve every 500 steps up to `last`, linear from 0.02 to `final` (or a jump at `jumpAt`). */
export function curveTo(final: number, last = 4000, jumpAt?: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s <= last; s += 500) {
    const v = jumpAt === undefined ? 0.02 + ((final - 0.02) * s) / last : s >= jumpAt ? final : 0.02 + (0.05 * s) / last;
    out.push([s, v]);
  }
  return out;
}

/**
 * The needle set: 3 arms × 3 seeds.
 * none (baseline):   finals 0.100, 0.110, 0.120 → mean 11.0, std 0.8165 → "11.0 ± 0.8 (best 12.0, 3 seeds)"
 * dyck (procedural): finals 0.920, 0.064, 0.050 → mean 34.467, std 40.686 → "34.5 ± 40.7 (best 92.0, 3 seeds)"
 * dyck-shuffled:     finals 0.070, 0.080, 0.090 → mean 8.0, std 0.8165 → "8.0 ± 0.8 (best 9.0, 3 seeds)"
 */
export function needleSet(): RunRecord[] {
  const out: RunRecord[] = [];
  const arms: { arm: string; role: ArmRole; finals: number[]; jump?: number }[] = [
    { arm: 'none', role: 'baseline', finals: [0.1, 0.11, 0.12] },
    { arm: 'dyck', role: 'procedural', finals: [0.92, 0.064, 0.05], jump: 2000 },
    { arm: 'dyck-shuffled', role: 'shuffled', finals: [0.07, 0.08, 0.09] },
  ];
  for (const a of arms) {
    a.finals.forEach((f, seed) => {
      const curve = curveTo(f, 4000, a.jump !== undefined && seed === 0 ? a.jump : undefined);
      out.push(
        record({
          arm: a.arm,
          role: a.role,
          seed,
          curve,
          final_accuracy: f,
          loss_curve: curve.slice(1).map(([s, acc]) => [s, 5 * (1 - acc) + 0.05] as [number, number]),
          stage1:
            a.role === 'baseline'
              ? null
              : a.role === 'shuffled'
                ? stage1({ task: 'dyck_shuffle', settings: { task: 'dyck_shuffle', k: 2, seed }, learned: false, closing_accuracy: 0.32 })
                : stage1({ settings: { task: 'dyck', k: 2, seed } }),
        }),
      );
    });
  }
  return out;
}
