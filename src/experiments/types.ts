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
  /** Semantic tasks (c4, codeparrot, deepmind_math) only; absent for algorithmic ones. */
  semantic?: SemanticRun;
}

/**
 * A semantic run (spec §7). For these, `final_accuracy` and `curve` hold the problem accuracy (DM-Math)
 * or the validation token accuracy (C4, CodeParrot), and `eval_loss_curve` the validation loss.
 */
export interface SemanticRun {
  /** Training tokens per optimizer step: micro-batch · accumulation · context (padding counted). */
  tokens_per_step: number;
  /** Tokens of the run's stage 1 (steps · batch · accumulation · context); 0 without one. */
  procedural_tokens: number;
  /** [step, tokens seen, validation loss, perplexity, problem accuracy (DM-Math) or null] per evaluation, step 0 first. */
  evals: [number, number, number, number, number | null][];
  final_loss: number;
  final_perplexity: number;
}

/** How many tokens a warmed arm needs to reach the baseline's final validation loss (spec §7.4). */
export interface DataSavedArm {
  arm: string;
  role: ArmRole;
  /** Mean over seeds of the arm's procedural (stage-1) tokens. */
  procedural_tokens: number;
  /** Tokens where the arm's mean validation-loss curve first reaches the target, interpolating linearly between evaluations; null: not reached. */
  tokens_to_reach: number | null;
  /** The paper's reading (§7.4): tokens at the first evaluation whose mean loss is ≤ the target; null: not reached. */
  tokens_to_reach_first_eval: number | null;
  /** 1 − tokens_to_reach / baseline_tokens (additive reading: semantic tokens only); null when not reached. */
  data_saved: number | null;
  /** 1 − (tokens_to_reach + procedural_tokens) / baseline_tokens (substitutive: procedural tokens counted); null when not reached. */
  data_saved_with_procedural: number | null;
  /** The same, per seed, each seed's curve against the same target. */
  seeds: { seed: number; tokens_to_reach: number | null; data_saved: number | null }[];
  /** Mean over seeds of the final validation loss. */
  final_loss: number;
}

/** The data-saved measurement of one semantic task. */
export interface DataSaved {
  task: string;
  /** The baseline arm the target comes from (the task's first arm with role baseline). */
  baseline: string;
  /** Mean over the baseline's seeds of its final validation loss. */
  target_loss: number;
  /** Tokens the baseline trained on (its last evaluation). */
  baseline_tokens: number;
  arms: DataSavedArm[];
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
    /** The first evaluated step with accuracy ≥ 50% (the step of a needle-style jump), null if none; semantic tasks: null. */
    steps_to_half: number | null;
    loss_curve: [number, number][];
    eval_loss_curve: [number, number][];
    stage1: Stage1Record | null;
    completed: boolean;
    /** Semantic tasks only. */
    semantic?: SemanticRun;
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
  /** Semantic tasks with a baseline: the tokens each other arm needs to reach the baseline's final validation loss. Absent without one. */
  data_saved?: DataSaved[];
}
