/**
 * `kindling score --checkpoint <dir> --input <file.jsonl> [--output out.jsonl]`: one JSON array of
 * token ids per input line; one JSON line per sequence out, with its mean next-token loss and the
 * argmax prediction at every position. Works on our checkpoints and on Hugging Face GPT-2 directories
 * (model.safetensors + config.json).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, SIDECAR_FILE } from '../io/checkpoint.ts';
import { loadHfGpt2 } from '../model/hf_gpt2.ts';
import { Engine } from '../../engine/engine.ts';
import { argmax, crossEntropyRows } from '../../engine/ops/cross_entropy.ts';
import type { GPTConfig } from '../model/config.ts';
import { GPT } from '../model/gpt.ts';
import { formatHelp, parseCommand, UsageError, type CommandSpec } from '../util/args.ts';
import { inputDirProblem, inputFileProblem, OutputError, OutputFile } from '../util/files.ts';
import { JsonlError, readJsonl } from '../util/jsonl.ts';
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

/** A usage error naming `--key` when `dir` is not a readable directory (a checkpoint to read). */
export function checkInputDir(key: string, dir: string): void {
  const problem = inputDirProblem(dir);
  if (problem) throw new UsageError(`--${key}: ${dir} ${problem}`, key);
}

/**
 * The weights of a kindling checkpoint (verified against the checksums of its kindling.json) or of a
 * Hugging Face directory. A directory without kindling.json is read as a Hugging Face one, with a
 * warning through `warn`: nothing checks its files (and a kindling checkpoint without it is an
 * interrupted save).
 */
export function loadModelWeights(dir: string, warn: (line: string) => void = () => undefined): { config: GPTConfig; weights: Map<string, Float32Array> } {
  if (existsSync(join(dir, SIDECAR_FILE))) {
    const ck = loadCheckpoint(dir);
    const config = ck.config as GPTConfig;
    const weights = new Map(ck.params);
    if (config.tied) weights.delete('lm_head.weight');
    return { config, weights };
  }
  warn(
    `warning: ${dir} has no ${SIDECAR_FILE}: reading it as a Hugging Face GPT-2 directory, without checksums to verify its files ` +
      `(a kindling checkpoint without ${SIDECAR_FILE} is an interrupted save)`,
  );
  const hf = loadHfGpt2(dir);
  const config: GPTConfig = hf.config;
  const weights = new Map([...hf.tensors].map(([k, v]) => [k, v.data as Float32Array]));
  if (config.tied) weights.delete('lm_head.weight');
  return { config: { ...config, dropout: { embd: 0, attn: 0, resid: 0 } }, weights };
}

/** The token sequences of a score input file; errors name the file and the line. */
function readSequences(file: string): { line: number; ids: number[] }[] {
  return readJsonl(file).map(({ line, value }) => {
    const ids = Array.isArray(value) ? value : (value as { ids?: unknown } | null)?.ids;
    if (!Array.isArray(ids) || ids.length < 1 || ids.some((x) => !Number.isInteger(x))) {
      throw new JsonlError(file, line, 'expected a JSON array of integer token ids (or {"ids": [...]})');
    }
    return { line, ids: ids as number[] };
  });
}

export async function runScoreCommand(argv: string[]): Promise<number> {
  const args = parseCommand(SCORE_SPEC, argv);
  if (args.help) {
    process.stdout.write(formatHelp(SCORE_SPEC));
    return 0;
  }
  const values = args.options;
  const inputProblem = inputFileProblem(values.input);
  if (inputProblem) throw new UsageError(`--input: ${values.input} ${inputProblem}`, 'input');
  checkInputDir('checkpoint', values.checkpoint);
  const lines = readSequences(values.input);
  const seqs = lines.map((l) => l.ids);
  const { config, weights } = loadModelWeights(values.checkpoint, (w) => process.stderr.write(`${w}\n`));
  for (const { line, ids } of lines) {
    if (ids.length > config.nPositions) throw new JsonlError(values.input, line, `${ids.length} tokens; the model's context is ${config.nPositions}`);
    for (const t of ids) if (t < 0 || t >= config.vocabSize) throw new JsonlError(values.input, line, `token ${t} is outside the vocabulary (0..${config.vocabSize - 1})`);
  }
  // Opened before the device, so that a bad path fails at once; an existing file is replaced only
  // once every line is written.
  let file: OutputFile | null = null;
  if (values.output !== undefined) {
    try {
      file = new OutputFile(values.output);
    } catch (e) {
      if (e instanceof OutputError) throw new UsageError(`--output: ${e.message}`, 'output');
      throw e;
    }
  }
  const out = file ?? process.stdout;
  let engine: Engine;
  try {
    engine = await Engine.create();
  } catch (e) {
    file?.abort();
    throw e;
  }
  const model = GPT.create(engine, { ...config, dropout: { embd: 0, attn: 0, resid: 0 } }, { weights });
  let ok = false;
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
    file?.commit();
    ok = true;
    return 0;
  } finally {
    if (!ok) file?.abort();
    model.destroy();
    engine.destroy();
  }
}
