/**
 * Tokenizers for the semantic corpora (spec §7): GPT-2 BPE for C4, any Hugging Face `tokenizer.json`
 * (the CodeParrot BPE) for code. Both come from maintained libraries — `gpt-tokenizer` for GPT-2,
 * `@huggingface/tokenizers` for tokenizer.json files — never a hand-written BPE.
 *
 * Conventions shared by every tokenizer here:
 *   * `encode` adds nothing (no BOS/EOS): documents are separated, where a corpus wants it, by the
 *     caller appending `eot`.
 *   * The literal text `<|endoftext|>` inside a document is encoded as the special token, as the
 *     Hugging Face tokenizers the reference code used do (their added tokens are split out of the
 *     text before BPE).
 */
import { existsSync, statSync } from 'node:fs';
import { gpt2Tokenizer } from './gpt2.ts';
import { hfTokenizerFromFile } from './hf.ts';

export interface Tokenizer {
  /** `gpt2`, or `hf:<path>` for a tokenizer.json. Recorded in shard manifests. */
  readonly name: string;
  /** One more than the largest token id (special tokens included): the model's vocab_size. */
  readonly vocabSize: number;
  /** Id of the end-of-text token (`<|endoftext|>`). */
  readonly eot: number;
  encode(text: string): number[] | Uint32Array;
  decode(ids: ArrayLike<number>): string;
}

/** A tokenizer spec that cannot be resolved (missing file, not a tokenizer.json, no end-of-text token). */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

/**
 * The CLI's `--tokenizer` value: `gpt2` (GPT-2 BPE, vocab 50257, end-of-text 50256) or a path to a
 * Hugging Face tokenizer.json.
 */
export function resolveTokenizer(spec: string): Tokenizer {
  const s = spec.trim();
  if (s === '') throw new TokenizerError('--tokenizer: expected "gpt2" or a path to a tokenizer.json, got an empty value');
  if (s === 'gpt2') return gpt2Tokenizer();
  if (!existsSync(s)) throw new TokenizerError(`--tokenizer: ${s}: no such file (expected "gpt2" or a path to a tokenizer.json)`);
  if (!statSync(s).isFile()) throw new TokenizerError(`--tokenizer: ${s}: not a file (expected a tokenizer.json)`);
  return hfTokenizerFromFile(s);
}

export { gpt2Tokenizer, tiktokenGpt2, GPT2_EOT, GPT2_MERGE_CACHE, GPT2_VOCAB_SIZE } from './gpt2.ts';
export { hfTokenizerFromFile, hfTokenizerFromJson } from './hf.ts';
