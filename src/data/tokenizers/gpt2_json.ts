/**
 * A Hugging Face `tokenizer.json` for GPT-2, built from the GPT-2 ranks bundled with `tiktoken` — so
 * the tokenizer.json path can be checked against the GPT-2 library without a download.
 *
 * GPT-2's vocabulary is its rank table: token id = rank, and the token of rank r ≥ 256 is the result
 * of merge number r − 256. The merge that made token r is recovered by running BPE on its bytes with
 * only the ranks below r allowed: that leaves exactly the two parts the merge joined. Byte strings
 * become vocabulary strings through GPT-2's byte-to-unicode table (printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100 upwards, in byte order).
 */
import { get_encoding } from 'tiktoken';
import { EOT_TEXT, GPT2_EOT } from './gpt2.ts';

/** GPT-2's byte → character table of its byte-level BPE. */
export function byteToUnicode(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCodePoint(printable ? b : next++);
  }
  return table;
}

/** The GPT-2 tokenizer.json object (vocab 50,257, 50,000 merges, `<|endoftext|>` added). */
export function gpt2TokenizerJson(): Record<string, unknown> {
  const enc = get_encoding('r50k_base');
  const tokens: Uint8Array[] = [];
  try {
    for (let id = 0; id < GPT2_EOT; id++) tokens.push(enc.decode_single_token_bytes(id));
  } finally {
    enc.free();
  }
  // Byte strings as latin1 keys (one char per byte) for the rank lookups.
  const key = (b: Uint8Array, lo = 0, hi = b.length) => String.fromCharCode(...b.subarray(lo, hi));
  const rank = new Map<string, number>();
  tokens.forEach((b, id) => rank.set(key(b), id));
  const b2u = byteToUnicode();
  const show = (k: string) => Array.from(k, (c) => b2u[c.charCodeAt(0)]).join('');

  const vocab: Record<string, number> = {};
  tokens.forEach((b, id) => (vocab[show(key(b))] = id));
  vocab[EOT_TEXT] = GPT2_EOT;

  const merges: [string, string][] = [];
  for (let id = 0; id < tokens.length; id++) {
    const b = tokens[id];
    if (b.length === 1) continue;
    let parts = Array.from(b, (x) => String.fromCharCode(x));
    for (;;) {
      let best = -1;
      let bestRank = id;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = rank.get(parts[i] + parts[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    if (parts.length !== 2) throw new Error(`GPT-2 rank ${id} (${JSON.stringify(show(key(b)))}) is not one merge of lower ranks (${parts.length} parts)`);
    if (id - 256 !== merges.length) throw new Error(`GPT-2 rank ${id}: expected merge number ${id - 256}, have ${merges.length} merges`);
    merges.push([show(parts[0]), show(parts[1])]);
  }

  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: GPT2_EOT, content: EOT_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
