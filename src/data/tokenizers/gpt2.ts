/**
 * GPT-2 BPE (OpenAI's `r50k_base`: 50,000 merges + 256 byte tokens + `<|endoftext|>` = 50,257 ids).
 *
 * The default implementation is `gpt-tokenizer` (pure JS). `tiktoken`'s WASM build is kept as a second
 * implementation of the same encoding: tests check the two agree, and benchmarks/tokenizer.bench.ts
 * compares their speed (docs/performance.md has the numbers; the faster one is the default).
 *
 * Special tokens: `gpt-tokenizer` only recognises an allowed special token at the very start of the
 * text or right after another one (its special-token regex is sticky), so `<|endoftext|>` is split
 * out here, and each piece between is encoded with the library's default options (which reject any
 * special token left in a piece — there is none after the split).
 */
import gptTokenizer from 'gpt-tokenizer/encoding/r50k_base';
import { get_encoding, type Tiktoken } from 'tiktoken';
import type { Tokenizer } from './index.ts';

export const GPT2_VOCAB_SIZE = 50257;
export const GPT2_EOT = 50256;
export const EOT_TEXT = '<|endoftext|>';

/**
 * Entries of gpt-tokenizer's merge cache. benchmarks/tokenizer.bench.ts times this against the
 * library's default of 100,000: the same speed (docs/performance.md), and a bounded, small cache.
 */
export const GPT2_MERGE_CACHE = 1000;

let cacheSet = false;

export function gpt2Tokenizer(): Tokenizer {
  if (gptTokenizer.vocabularySize !== GPT2_VOCAB_SIZE) throw new Error(`gpt-tokenizer r50k_base has ${gptTokenizer.vocabularySize} ids, expected ${GPT2_VOCAB_SIZE}`);
  if (!cacheSet) {
    gptTokenizer.setMergeCacheSize(GPT2_MERGE_CACHE);
    cacheSet = true;
  }
  return {
    name: 'gpt2',
    vocabSize: GPT2_VOCAB_SIZE,
    eot: GPT2_EOT,
    encode(text: string): number[] {
      if (!text.includes(EOT_TEXT)) return gptTokenizer.encode(text);
      const out: number[] = [];
      const parts = text.split(EOT_TEXT);
      for (let i = 0; i < parts.length; i++) {
        if (i > 0) out.push(GPT2_EOT);
        if (parts[i] !== '') for (const t of gptTokenizer.encode(parts[i])) out.push(t);
      }
      return out;
    },
    decode: (ids) => gptTokenizer.decode(Array.from(ids)),
  };
}

/** GPT-2 through tiktoken's WASM build. Holds WASM memory: call `free()` when done. */
export function tiktokenGpt2(): Tokenizer & { free(): void } {
  const enc: Tiktoken = get_encoding('r50k_base');
  const utf8 = new TextDecoder();
  return {
    name: 'gpt2 (tiktoken)',
    vocabSize: GPT2_VOCAB_SIZE,
    eot: GPT2_EOT,
    encode: (text: string) => enc.encode(text, 'all'),
    decode: (ids) => utf8.decode(enc.decode(Uint32Array.from(ids))),
    free: () => enc.free(),
  };
}
