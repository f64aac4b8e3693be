// Tiny semantic corpora written by the tests: gzipped C4 shards of a few documents, and a DM-Math
// folder tree. Documents are sentences over a small alphabet so that a toy tokenizer (one id per
// character) keeps the model tiny.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TextTokenizer } from '../../src/train/semantic.ts';
import { C4_SCHEMA, type C4Config, loadConfig } from '../../src/train/config.ts';

const WORDS = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'dog', 'ran', 'to', 'it'];

/** A deterministic document of `n` words (a repeating grammar a model learns quickly). */
export function document(i: number, n: number): string {
  const out: string[] = [];
  for (let k = 0; k < n; k++) out.push(WORDS[(i * 3 + k * 5 + ((k * k) % 7)) % WORDS.length]!);
  return `${out.join(' ')}.`;
}

/** Writes c4-train.00000-of-00001.json.gz and c4-validation.00000-of-00001.json.gz under `dir`. */
export function writeC4(dir: string, opts: { train?: number; validation?: number; words?: (i: number) => number } = {}): { train: string; validation: string } {
  mkdirSync(dir, { recursive: true });
  const words = opts.words ?? ((i: number) => 20 + (i % 5) * 4);
  const lines = (n: number, off: number) =>
    Array.from({ length: n }, (_, i) => JSON.stringify({ text: document(off + i, words(off + i)), timestamp: '2019-04-25T12:57:54Z', url: `https://example.org/${off + i}` })).join('\n') + '\n';
  const train = join(dir, 'c4-train.00000-of-00001.json.gz');
  const validation = join(dir, 'c4-validation.00000-of-00001.json.gz');
  writeFileSync(train, gzipSync(lines(opts.train ?? 40, 0)));
  writeFileSync(validation, gzipSync(lines(opts.validation ?? 6, 1000)));
  return { train, validation };
}

/** One id per character: a–z → 1..26, space 27, '.' 28, anything else 29; id 0 is the pad/EOS. */
export const CHAR_TOKENIZER: TextTokenizer = {
  name: 'test-char',
  encode: (text: string) => [...text].map((c) => (c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : c === ' ' ? 27 : c === '.' ? 28 : 29)),
  vocabSize: 32,
  eosId: 0,
};

/** A DM-Math tree: train-easy/medium/hard and interpolate, each with two modules of additions. */
export function writeMath(root: string, perFile = 40): string {
  const modules = ['arithmetic__add', 'arithmetic__sub'];
  for (const split of ['train-easy', 'train-medium', 'train-hard', 'interpolate']) {
    mkdirSync(join(root, split), { recursive: true });
    modules.forEach((m, mi) => {
      const lines: string[] = [];
      for (let i = 0; i < perFile; i++) {
        const a = (i * 7 + split.length) % 10;
        const b = (i * 3 + mi) % 10;
        lines.push(mi === 0 ? `What is ${a} plus ${b}?` : `What is ${a + b} minus ${b}?`, String(mi === 0 ? a + b : a));
      }
      writeFileSync(join(root, split, `${m}.txt`), `${lines.join('\n')}\n`);
    });
  }
  return root;
}

/** A C4 stage-2 config of a tiny model (1_2_16, context n_positions) on `data`, 8 steps, evaluating and saving every 4. */
export function tinyC4Config(data: { train: string; validation: string }, over: Record<string, unknown> = {}, nPositions = 32): C4Config {
  return loadConfig<C4Config>(C4_SCHEMA, {
    overrides: {
      gpt2_size: '1_2_16',
      n_positions: nPositions,
      dropout: 0,
      bsz: 4,
      gradient_accumulation_steps: 2,
      max_steps: 8,
      eval_steps: 4,
      save_steps: 4,
      logging_steps: 4,
      lr: 1e-2,
      seed: 5,
      train_data: data.train,
      validation_data: data.validation,
      per_device_eval_batch_size: 4,
      ...over,
    },
  }).values;
}
