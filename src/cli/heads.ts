/**
 * `kindling heads --checkpoint DIR [--layer L] [--json]`: what each attention head of a checkpoint
 * does to the residual stream, read off its weights alone (no data, no device).
 *
 * Per head h of a layer (HF Conv1D layout, y = x·W): W_Q, W_K, W_V are the head's d × hd column
 * blocks of c_attn.weight, W_O its hd × d row block of c_proj.weight. Two d × d circuits:
 *   QK = W_Q·W_Kᵀ  (the score of a query vector x against a key vector y is xᵀ·QK·y, before scaling)
 *   OV = W_V·W_O   (what an attended vector x writes into the residual: xᵀ·OV)
 * and for each its alignment with the identity, tr(M) / (‖M‖_F·√d), divided by its largest possible
 * value √(hd/d) (a rank-hd M equal to a projection), so ±1 at most:
 *   QK·I > 0: the head attends to keys like its query (same token: content matching); < 0: away from them.
 *   OV·I > 0: it copies what it attends to into the residual; < 0: it writes the opposite (suppresses it).
 * Both are properties of the weights in any basis, so they survive a transfer into a model with other
 * embeddings (the transfer experiments' block-1 attention). Biases are left out.
 */
import type { GPTConfig } from '../model/config.ts';
import { formatHelp, parseCommand, UsageError, type CommandSpec } from '../util/args.ts';
import { checkInputDir, loadModelWeights } from './score.ts';

export const HEADS_SPEC = {
  command: 'kindling heads',
  summary:
    "Per attention head of a checkpoint: the norms of W_Q, W_K, W_V, W_O and the identity alignment of its QK and OV circuits " +
    '(+1: attends to its own kind / copies what it attends to; -1: avoids it / suppresses it; 0: neither), from the weights alone.',
  options: {
    checkpoint: { type: 'string', required: true, metavar: 'DIR', doc: 'the checkpoint (kindling or Hugging Face GPT-2 directory)' },
    layer: { type: 'int', min: 0, metavar: 'L', doc: 'only this layer (0-based; default: every layer)' },
    json: { type: 'bool', default: false, doc: 'one JSON line per head instead of the table' },
  },
} as const satisfies CommandSpec;

export interface HeadCircuit {
  layer: number;
  head: number;
  normQ: number;
  normK: number;
  normV: number;
  normO: number;
  /** Identity alignment of W_Q·W_Kᵀ as a fraction of its maximum √(hd/d): in [−1, 1]. */
  qk: number;
  /** Identity alignment of W_V·W_O as a fraction of its maximum: in [−1, 1]. */
  ov: number;
}

/**
 * Identity alignment of A·Bᵀ (A, B: d × hd, as column blocks `a(i, c)`, `b(i, c)`), over its maximum:
 * tr(A·Bᵀ) = Σ A∘B, ‖A·Bᵀ‖²_F = Σ (AᵀA)∘(BᵀB) (hd × hd Gram matrices; float64).
 */
function alignment(d: number, hd: number, a: (i: number, c: number) => number, b: (i: number, c: number) => number): number {
  let tr = 0;
  const ga = new Float64Array(hd * hd);
  const gb = new Float64Array(hd * hd);
  for (let i = 0; i < d; i++)
    for (let c = 0; c < hd; c++) {
      const ac = a(i, c);
      const bc = b(i, c);
      tr += ac * bc;
      for (let e = 0; e < hd; e++) {
        ga[c * hd + e]! += ac * a(i, e);
        gb[c * hd + e]! += bc * b(i, e);
      }
    }
  let f2 = 0;
  for (let k = 0; k < hd * hd; k++) f2 += ga[k]! * gb[k]!;
  if (f2 <= 0) return 0;
  return tr / Math.sqrt(f2) / Math.sqrt(d) / Math.sqrt(hd / d);
}

/** The circuits of every head of the given layers (default all) of a GPT-2 checkpoint's weights. */
export function headCircuits(config: Pick<GPTConfig, 'nLayer' | 'nHead' | 'nEmbd'>, weights: ReadonlyMap<string, Float32Array>, layers?: readonly number[]): HeadCircuit[] {
  const d = config.nEmbd;
  const H = config.nHead;
  const hd = d / H;
  const out: HeadCircuit[] = [];
  for (const l of layers ?? Array.from({ length: config.nLayer }, (_, i) => i)) {
    const get = (n: string): Float32Array => {
      const w = weights.get(`transformer.h.${l}.attn.${n}.weight`);
      if (!w) throw new Error(`heads: the checkpoint has no transformer.h.${l}.attn.${n}.weight`);
      return w;
    };
    const W = get('c_attn'); // [d, 3d]
    const O = get('c_proj'); // [d, d]: row = input (head) channel
    for (let h = 0; h < H; h++) {
      // The head's d × hd blocks: W_Q, W_K, W_V (columns of c_attn) and W_Oᵀ (rows of c_proj).
      const col = (part: number) => (i: number, c: number) => W[i * 3 * d + part * d + h * hd + c]!;
      const [q, k, v] = [col(0), col(1), col(2)];
      const o = (i: number, c: number) => O[(h * hd + c) * d + i]!;
      const norm = (x: (i: number, c: number) => number): number => {
        let s = 0;
        for (let i = 0; i < d; i++) for (let c = 0; c < hd; c++) s += x(i, c) ** 2;
        return Math.sqrt(s);
      };
      out.push({ layer: l, head: h, normQ: norm(q), normK: norm(k), normV: norm(v), normO: norm(o), qk: alignment(d, hd, q, k), ov: alignment(d, hd, v, o) });
    }
  }
  return out;
}

export async function runHeadsCommand(argv: string[]): Promise<number> {
  const args = parseCommand(HEADS_SPEC, argv);
  if (args.help) {
    process.stdout.write(formatHelp(HEADS_SPEC));
    return 0;
  }
  const v = args.options;
  checkInputDir('checkpoint', v.checkpoint);
  const { config, weights } = loadModelWeights(v.checkpoint, (w) => process.stderr.write(`${w}\n`));
  if (v.layer !== undefined && v.layer >= config.nLayer) throw new UsageError(`--layer: ${v.layer} is not a layer of this ${config.nLayer}-layer model (0..${config.nLayer - 1})`, 'layer');
  const rows = headCircuits(config, weights, v.layer === undefined ? undefined : [v.layer]);
  if (v.json) for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    const f = (x: number, digits = 3) => (x >= 0 && digits === 2 ? '+' : '') + x.toFixed(digits);
    process.stdout.write(`${v.checkpoint} (d ${config.nEmbd}, ${config.nHead} heads of ${config.nEmbd / config.nHead})\n\n`);
    process.stdout.write('| layer | head | ‖W_Q‖ | ‖W_K‖ | ‖W_V‖ | ‖W_O‖ | QK·I | OV·I |\n|---|---|---|---|---|---|---|---|\n');
    for (const r of rows) process.stdout.write(`| ${r.layer} | ${r.head} | ${f(r.normQ)} | ${f(r.normK)} | ${f(r.normV)} | ${f(r.normO)} | ${f(r.qk, 2)} | ${f(r.ov, 2)} |\n`);
  }
  return 0;
}
