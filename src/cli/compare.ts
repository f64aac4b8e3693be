/**
 * `kindling compare --checkpoint DIR (--against DIR2 | --init-seed S) [--match TEXT]`: how far each
 * parameter of a checkpoint lies from another checkpoint's, or from the initialisation our models draw
 * with seed S (src/model/hf_names.ts: one random stream per parameter name and seed, so a stage-1
 * model's initial weights are known without a checkpoint of them). One row per parameter present in
 * both, with the Frobenius norms ‖A‖, ‖B‖, the relative distance ‖A − B‖ / ‖B‖ and the ratio ‖A‖ / ‖B‖;
 * parameters whose shapes differ (a stage-1 vocabulary against a stage-2 one) are listed as such.
 * Reads files only: no device.
 */
import type { GPTConfig } from '../model/config.ts';
import { initParams, paramShapes } from '../model/hf_names.ts';
import { formatHelp, parseCommand, UsageError, type CommandSpec } from '../util/args.ts';
import { checkInputDir, loadModelWeights } from './score.ts';

export const COMPARE_SPEC = {
  command: 'kindling compare',
  summary:
    'Per parameter of a checkpoint: its norm, the reference norm, the relative distance |A - B| / |B| and the norm ratio |A| / |B|, ' +
    'against another checkpoint (--against) or against the initial weights our models draw with a seed (--init-seed).',
  options: {
    checkpoint: { type: 'string', required: true, metavar: 'DIR', doc: 'the checkpoint A (kindling or Hugging Face GPT-2 directory)' },
    against: { type: 'string', metavar: 'DIR', doc: 'the reference checkpoint B' },
    'init-seed': { type: 'int', min: 0, metavar: 'S', doc: "the reference B: the initialisation of A's model shape with seed S" },
    match: { type: 'string', metavar: 'TEXT', doc: 'only parameters whose name contains TEXT (e.g. attn.)' },
    json: { type: 'bool', default: false, doc: 'one JSON line per parameter instead of the table' },
  },
} as const satisfies CommandSpec;

export interface WeightDistance {
  name: string;
  shape: number[];
  /** ‖A‖, ‖B‖, ‖A − B‖ / ‖B‖ and ‖A‖ / ‖B‖ (null when the shapes differ or ‖B‖ = 0, e.g. zero-initialised biases). */
  normA: number;
  normB: number;
  relDistance: number | null;
  normRatio: number | null;
  /** B's shape when it differs from A's. */
  shapeB?: number[];
}

function norm(a: Float32Array): number {
  let s = 0;
  for (const x of a) s += x * x;
  return Math.sqrt(s);
}

/** Distances of every parameter of `a` present in `b` (float64 sums), in `a`'s order. */
export function compareWeights(
  a: ReadonlyMap<string, Float32Array>,
  b: ReadonlyMap<string, Float32Array>,
  shapesA: ReadonlyMap<string, number[]>,
  shapesB: ReadonlyMap<string, number[]>,
): WeightDistance[] {
  const out: WeightDistance[] = [];
  for (const [name, wa] of a) {
    const wb = b.get(name);
    if (!wb) continue;
    const shape = shapesA.get(name) ?? [wa.length];
    const shapeB = shapesB.get(name) ?? [wb.length];
    const normA = norm(wa);
    const normB = norm(wb);
    if (wa.length !== wb.length || shape.join() !== shapeB.join() || normB === 0) {
      out.push({ name, shape, normA, normB, relDistance: null, normRatio: null, ...(shape.join() !== shapeB.join() ? { shapeB } : {}) });
      continue;
    }
    let d = 0;
    for (let i = 0; i < wa.length; i++) d += (wa[i]! - wb[i]!) ** 2;
    out.push({ name, shape, normA, normB, relDistance: Math.sqrt(d) / normB, normRatio: normA / normB });
  }
  return out;
}

export async function runCompareCommand(argv: string[]): Promise<number> {
  const args = parseCommand(COMPARE_SPEC, argv);
  if (args.help) {
    process.stdout.write(formatHelp(COMPARE_SPEC));
    return 0;
  }
  const v = args.options;
  if ((v.against === undefined) === (v['init-seed'] === undefined)) throw new UsageError('give exactly one of --against DIR and --init-seed S', 'against');
  checkInputDir('checkpoint', v.checkpoint);
  if (v.against !== undefined) checkInputDir('against', v.against);
  const warn = (w: string) => process.stderr.write(`${w}\n`);
  const A = loadModelWeights(v.checkpoint, warn);
  let B: { config: GPTConfig; weights: Map<string, Float32Array> };
  if (v.against !== undefined) B = loadModelWeights(v.against, warn);
  else {
    const init = initParams(A.config, v['init-seed']!);
    if (A.config.tied) init.delete('lm_head.weight');
    B = { config: A.config, weights: init };
  }
  const pick = (m: Map<string, Float32Array>) => new Map([...m].filter(([k]) => v.match === undefined || k.includes(v.match)));
  const rows = compareWeights(pick(A.weights), pick(B.weights), paramShapes(A.config), paramShapes(B.config));
  if (rows.length === 0) throw new UsageError(`no parameter${v.match !== undefined ? ` matching "${v.match}"` : ''} is present in both`, 'match');
  const f = (x: number | null, digits = 4) => (x === null ? '–' : x.toFixed(digits));
  if (v.json) for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    const ref = v.against !== undefined ? v.against : `init seed ${v['init-seed']}`;
    process.stdout.write(`A = ${v.checkpoint}\nB = ${ref}\n\n| parameter | shape | ‖A‖ | ‖B‖ | ‖A − B‖ / ‖B‖ | ‖A‖ / ‖B‖ |\n|---|---|---|---|---|---|\n`);
    for (const r of rows)
      process.stdout.write(
        `| ${r.name} | ${r.shape.join('×')}${r.shapeB ? ` (B: ${r.shapeB.join('×')})` : ''} | ${f(r.normA)} | ${f(r.normB)} | ${f(r.relDistance, 3)} | ${f(r.normRatio, 3)} |\n`,
      );
  }
  return 0;
}
