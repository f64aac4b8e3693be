/**
 * The records an experiment writes, shared by the runner (src/experiments/runner.ts), the aggregation
 * and the reports (src/experiments/report.ts). `results.json` is the contract other tools read:
 * accuracies are fractions of 1, steps are optimizer steps of stage 2.
 */

/** What an arm is in the paper's table: no pretraining, procedural pretraining, or its shuffled control. */
export type ArmRole = 'baseline' | 'procedural' | 'shuffled';

/** Stage 1 of one run: the procedural settings, and whether the model learned its language. */
export interface Stage1Record {
  /** Procedural task (e.g. `dyck`), or the mixture's name. */
  task: string;
  /** Resolved stage-1 settings (procedural config keys and values). */
  settings: Record<string, unknown>;
  /** Passed the learned gate (closing-bracket accuracy for Dyck, token accuracy otherwise). */
  learned: boolean;
  /** Dyck / Dyck-shuffle: accuracy on positions whose target is a closing bracket; null otherwise. */
  closing_accuracy: number | null;
  /** Validation token accuracy at the end of stage 1. */
  accuracy: number;
  steps: number;
  elapsed_s: number;
}

/** One finished (or partial) run: one arm × sweep point × seed. Written as `result.json` in its run directory. */
export interface RunRecord {
  experiment: string;
  /** Arm name with the sweep point, e.g. `dyck` or `dyck[stage1.lr=0.003]`. */
  arm: string;
  role: ArmRole;
  /** Downstream task id, e.g. `condattendstream_30`. */
  task: string;
  seed: number;
  /** Sweep values of this run, keyed `stage1.<key>` / `stage2.<key>` ({} without sweeps). */
  point: Record<string, unknown>;
  stage1: Stage1Record | null;
  final_accuracy: number;
  /** [step, test accuracy] at each evaluation, step 0 (before training) included. */
  curve: [number, number][];
  /** [step, mean training loss since the previous entry]. */
  loss_curve: [number, number][];
  /** [step, test loss] at each evaluation. */
  eval_loss_curve: [number, number][];
  elapsed_s: number;
  /** Adapter and host the run ran on. */
  machine: string;
  completed: boolean;
}

/** Per-arm aggregate over seeds. */
export interface ArmSummary {
  name: string;
  role: ArmRole;
  task: string;
  point: Record<string, unknown>;
  /** Stage-1 settings shared by the arm's seeds, `learned` only if every seed learned, mean closing accuracy; null for baselines. */
  stage1: (Record<string, unknown> & { learned: boolean; closing_accuracy: number | null }) | null;
  seeds: {
    seed: number;
    final_accuracy: number;
    curve: [number, number][];
    loss_curve: [number, number][];
    eval_loss_curve: [number, number][];
    stage1: Stage1Record | null;
    completed: boolean;
  }[];
  /** Mean, standard deviation (population, over seeds) and best of the final accuracies. */
  mean: number;
  std: number;
  best: { seed: number; final_accuracy: number };
  /** [step, mean, std, best] over seeds at each evaluation step all seeds reached. */
  curve_stats: [number, number, number, number][];
}

/** `results.json`. */
export interface ExperimentResults {
  experiment: string;
  arms: ArmSummary[];
  /** Wall-clock seconds summed over runs (stage 1 included once per cached checkpoint). */
  elapsed_s: number;
  machine: string;
  /** Runs planned, and how many finished. */
  runs: { planned: number; completed: number };
}
