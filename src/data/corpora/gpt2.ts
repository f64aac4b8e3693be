// The GPT-2 BPE (vocab 50257) as an `encode` function for the loaders and packers: the one place the
// corpus code touches a tokenizer library (gpt-tokenizer's r50k/gpt2 encoding). Text is encoded as
// plain text: `<|endoftext|>` written in a document is ordinary characters, never the special token,
// as §7.1 tokenizes "with no special tokens".

import { encode } from 'gpt-tokenizer/encoding/gpt2';

/** GPT-2's `<|endoftext|>` id: C4's validation padding, and the document separator when GPT-2 stands in for CodeParrot's tokenizer. */
export const GPT2_EOS = 50256;
export const GPT2_VOCAB = 50257;

const PLAIN = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };

/** GPT-2 token ids of `text`, special-token strings encoded as text. */
export function encodeGpt2(text: string): number[] {
  return encode(text, PLAIN);
}

/** GPT-2 tokens in `text`. */
export function countGpt2Tokens(text: string): number {
  return encodeGpt2(text).length;
}
