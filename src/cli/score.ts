/**
 * `kindling score --checkpoint <dir> --input <file.jsonl> [--output out.jsonl]`: one JSON array of
 * token ids per input line; one JSON line per sequence out, with its mean next-token loss and the
 * argmax prediction at every position. Works on our checkpoints and on Hugging Face GPT-2 directories
 * (model.safetensors + config.json).
 */
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, SIDECAR_FILE } from '../io/checkpoint.ts';
import { loadHfGpt2 } from '../model/hf_gpt2.ts';
import { Engine } from '../../engine/engine.ts';
import { argmax, crossEntropyRows } from '../../engine/ops/cross_entropy.ts';
import type { GPTConfig } from '../model/config.ts';
import { GPT } from '../model/gpt.ts';
import { formatHelp, parseCommand, type CommandSpec } from '../util/args.ts';
import { DEVICE_ENV } from './env.ts';

export const SCORE_SPEC = {
  command: 'kindling score',
  summary:
    'Each input line is a JSON array of token ids (or {"ids": [...]}). For each sequence, writes ' +
    '{"loss": mean next-token loss over positions 0..n-2, "tokens": n-1, "predictions": [argmax at each position]}.',
  options: {
    checkpoint: { type: 'string', required: true, metavar: 'DIR', doc: 'a kindling checkpoint (kindling.json) or a Hugging Face GPT-2 directory (config.json + model.safetensors)' },
    input: { type: 'string', required: true, metavar: 'FILE', doc: 'token sequences, one JSON array per line' },
    output: { type: 'string', metavar: 'FILE', defaultDoc: 'stdout', doc: 'where the JSON lines go' },
    'batch-size': { type: 'int', default: 16, min: 1, metavar: 'N', doc: 'sequences per forward pass' },
  },
  env: DEVICE_ENV,
} as const satisfies CommandSpec;

export function loadModelWeights(dir: string): { config: GPTConfig; weights: Map<string, Float32Array> } {
  if (existsSync(join(dir, SIDECAR_FILE))) {
    const ck = loadCheckpoint(dir);
    const config = ck.config as GPTConfig;
    const weights = new Map(ck.params);
    if (config.tied) weights.delete('lm_head.weight');
    return { config, weights };
  }
  const hf = loadHfGpt2(dir);
  const config: GPTConfig = hf.config;
  const weights = new Map([...hf.tensors].map(([k, v]) => [k, v.data as Float32Array]));
  if (config.tied) weights.delete('lm_head.weight');
  return { config: { ...config, dropout: { embd: 0, attn: 0, resid: 0 } }, weights };
}

export async function runScoreCommand(argv: string[]): Promise<number> {
  const args = parseCommand(SCORE_SPEC, argv);
  if (args.help) {
    process.stdout.write(formatHelp(SCORE_SPEC));
    return 0;
  }
  const values = args.options;
  const seqs = readFileSync(values.input, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      const j = JSON.parse(l) as number[] | { ids: number[] };
      const ids = Array.isArray(j) ? j : j.ids;
      if (!Array.isArray(ids) || ids.length < 1 || ids.some((x) => !Number.isInteger(x))) throw new Error(`${values.input}:${i + 1}: expected a JSON array of integer token ids`);
      return ids;
    });
  const { config, weights } = loadModelWeights(values.checkpoint);
  for (const [i, s] of seqs.entries()) {
    if (s.length > config.nPositions) throw new Error(`sequence ${i + 1} has ${s.length} tokens; the model's context is ${config.nPositions}`);
    for (const t of s) if (t < 0 || t >= config.vocabSize) throw new Error(`sequence ${i + 1}: token ${t} is outside the vocabulary (0..${config.vocabSize - 1})`);
  }
  const out = values.output ? createWriteStream(values.output) : process.stdout;
  const engine = await Engine.create();
  const model = GPT.create(engine, { ...config, dropout: { embd: 0, attn: 0, resid: 0 } }, { weights });
  try {
    const bs = values['batch-size'];
    for (let start = 0; start < seqs.length; start += bs) {
      const group = seqs.slice(start, start + bs);
      const T = Math.max(...group.map((s) => s.length));
      const B = group.length;
      const ids = new Int32Array(B * T);
      const targets = new Int32Array(B * T);
      const mask = new Float32Array(B * T);
      group.forEach((s, b) => {
        for (let t = 0; t < s.length; t++) {
          ids[b * T + t] = s[t]!;
          if (t + 1 < s.length) {
            targets[b * T + t] = s[t + 1]!;
            mask[b * T + t] = 1;
          }
        }
      });
      const [rowLoss, pred] = engine.noGrad(() =>
        engine.tidy(() => {
          // Every position's logits are read (losses and predictions): never cut or gathered.
          const d = model.uploadBatch({ ids, targets, lossMask: mask, batch: B, seqLen: T }, { sparse: false });
          const logits = model.forward(d);
          return [crossEntropyRows(logits, d.targets, d.lossMask), argmax(logits)] as const;
        }),
      );
      const losses = await rowLoss.read();
      const preds = await pred.read();
      rowLoss.dispose();
      pred.dispose();
      group.forEach((s, b) => {
        let sum = 0;
        for (let t = 0; t + 1 < s.length; t++) sum += losses[2 * (b * T + t)]!;
        const n = s.length - 1;
        out.write(JSON.stringify({ loss: n > 0 ? sum / n : null, tokens: n, predictions: Array.from(preds.subarray(b * T, b * T + s.length)) }) + '\n');
      });
    }
    return 0;
  } finally {
    model.destroy();
    engine.destroy();
    // Resolve only once the file is flushed, so that the caller can read it.
    if (out !== process.stdout) await new Promise<void>((resolve) => (out as ReturnType<typeof createWriteStream>).end(resolve));
  }
}
