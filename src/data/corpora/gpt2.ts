// The GPT-2 BPE (vocab 50257) as an `encode` function for the loaders and packers, from the one GPT-2
// tokenizer of src/data/tokenizers (gpt-tokenizer's r50k_base). A literal `<|endoftext|>` in a text is
// id 50256, as the Hugging Face tokenizers of the reference read it (no special tokens are *added*).

import { gpt2Tokenizer, GPT2_EOT, GPT2_VOCAB_SIZE } from '../tokenizers/index.ts';

/** GPT-2's `<|endoftext|>` id: C4's validation padding, and the document separator when GPT-2 stands in for CodeParrot's tokenizer. */
export const GPT2_EOS = GPT2_EOT;
export const GPT2_VOCAB = GPT2_VOCAB_SIZE;

const tokenizer = gpt2Tokenizer();

/** GPT-2 token ids of `text`. */
export function encodeGpt2(text: string): number[] {
  return Array.from(tokenizer.encode(text));
}

/** GPT-2 tokens in `text`. */
export function countGpt2Tokens(text: string): number {
  return encodeGpt2(text).length;
}
