// GPT-2 BPE through gpt-tokenizer (the default), tiktoken's WASM build and @huggingface/tokenizers on
// a tokenizer.json built from GPT-2's bundled ranks: known ids, three-way agreement, resolver errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT2_EOT, GPT2_VOCAB_SIZE, gpt2Tokenizer, resolveTokenizer, tiktokenGpt2, TokenizerError, type Tokenizer } from '../../src/data/tokenizers/index.ts';
import { byteToUnicode, gpt2TokenizerJson } from '../../src/data/tokenizers/gpt2_json.ts';

// Ids of the original GPT-2 vocabulary (encoder.json), as HF's GPT2Tokenizer gives them.
const KNOWN: [string, number[]][] = [
  ['Hello world', [15496, 995]],
  ['Hello, my dog is cute', [15496, 11, 616, 3290, 318, 13779]],
  [' the', [262]],
  ['The', [464]],
  [' Hello', [18435]],
  ['\n', [198]],
  ['\n\n', [628]],
  ['<|endoftext|>', [50256]],
];

// A varied text set: ASCII, whitespace runs, Unicode, emoji, code, numbers, contractions.
const TEXTS: string[] = [
  'Hello world',
  '',
  ' ',
  '   leading and trailing   ',
  'tabs\tand\t\ttabs\n\n\nnewlines\r\nCRLF \n \n',
  "I'm sure they'll say it's fine, we've seen you'd been; I'D SHOUT 'QUOTES' 's 're",
  'naïve café résumé — “curly quotes” and ‘single’ … ellipsis',
  '日本語のテキストと中文和한국어',
  'Ελληνικά и кириллица, עברית and العربية',
  'emoji 🤖👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 keycap 1️⃣',
  'combining e\u0301 vs é, zero\u200bwidth, nbsp\u00a0here, soft\u00adhyphen',
  'def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  'for (let i = 0; i < arr.length; i++) { sum += arr[i] ** 2; } // comment\n\t\treturn {a: [1, 2], "b": null};',
  '3.14159 2,718,281 1e-9 0x1F 007 12345678901234567890 -42 +7 50%',
  'What is 17 + 25? Answer: 42. Solve 3*x - 7 = 11 for x.',
  'a<|endoftext|>b<|endoftext|><|endoftext|> c',
  'mixed<tag attr="v">text</tag>&amp;&#x27; https://example.com/a?b=c#d user@host.org',
  '!!!???...,,,;;;:::---___***###@@@$$$%%%^^^&&&(((]]]}}}|||\\\\~~~```',
];

function ids(t: Tokenizer, s: string): number[] {
  return Array.from(t.encode(s));
}

let dir: string;
let jsonPath: string;
let gpt2: Tokenizer;
let tk: ReturnType<typeof tiktokenGpt2>;
let hf: Tokenizer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kindling-tok-'));
  jsonPath = join(dir, 'tokenizer.json');
  writeFileSync(jsonPath, JSON.stringify(gpt2TokenizerJson()));
  gpt2 = resolveTokenizer('gpt2');
  tk = tiktokenGpt2();
  hf = resolveTokenizer(jsonPath);
});

afterAll(() => {
  tk?.free();
  rmSync(dir, { recursive: true, force: true });
});

describe('GPT-2 BPE', () => {
  it('gives the original GPT-2 ids', () => {
    for (const [s, want] of KNOWN) {
      expect(ids(gpt2, s), JSON.stringify(s)).toEqual(want);
      expect(ids(tk, s), JSON.stringify(s)).toEqual(want);
      expect(ids(hf, s), JSON.stringify(s)).toEqual(want);
    }
  });

  it('vocabulary and end-of-text', () => {
    for (const t of [gpt2, tk, hf]) {
      expect(t.vocabSize).toBe(GPT2_VOCAB_SIZE);
      expect(t.eot).toBe(GPT2_EOT);
    }
    expect(gpt2.name).toBe('gpt2');
    expect(hf.name).toBe(`hf:${jsonPath}`);
  });

  it('gpt-tokenizer, tiktoken and the tokenizer.json agree on varied text, and decode round-trips', () => {
    for (const s of TEXTS) {
      const want = ids(tk, s);
      expect(ids(gpt2, s), JSON.stringify(s)).toEqual(want);
      expect(ids(hf, s), JSON.stringify(s)).toEqual(want);
      expect(gpt2.decode(want)).toBe(s);
      expect(hf.decode(want)).toBe(s);
      expect(tk.decode(want)).toBe(s);
    }
  });

  it('agree on a long pseudo-random mix of the text set', () => {
    // Pieces glued without separators create token boundaries the single texts do not have.
    let x = 12345;
    const rnd = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const parts: string[] = [];
    for (let i = 0; i < 300; i++) {
      const s = TEXTS[rnd(TEXTS.length)];
      const a = rnd(s.length + 1);
      parts.push(s.slice(a, a + 1 + rnd(40)), [' ', '', '\n', '  ', "'"][rnd(5)]);
    }
    // Cutting at UTF-16 positions can split a surrogate pair; keep whole code points only.
    const text = parts.join('').replace(/[\ud800-\udfff]/g, (c, i: number, s: string) => (/[\ud800-\udbff][\udc00-\udfff]/.test(s.slice(i, i + 2)) || /[\ud800-\udbff][\udc00-\udfff]/.test(s.slice(i - 1, i + 1)) ? c : ''));
    const want = ids(tk, text);
    expect(want.length).toBeGreaterThan(1000);
    expect(ids(gpt2, text)).toEqual(want);
    expect(ids(hf, text)).toEqual(want);
  });

  it('the literal <|endoftext|> in text is the special token, as in the HF tokenizers', () => {
    expect(ids(gpt2, 'x<|endoftext|>y')).toEqual([87, 50256, 88]);
    expect(ids(gpt2, '<|endoftext|><|endoftext|>')).toEqual([50256, 50256]);
  });
});

describe('the tokenizer.json fixture', () => {
  it("uses GPT-2's byte-to-unicode table and its first merges", () => {
    const t = byteToUnicode();
    expect(t[0x20]).toBe('Ġ'); // space → U+0120
    expect(t[0x0a]).toBe('Ċ'); // newline → U+010A
    expect(t[0x41]).toBe('A');
    expect(new Set(t).size).toBe(256);
    const model = gpt2TokenizerJson().model as { merges: string[][]; vocab: Record<string, number> };
    expect(model.merges.length).toBe(50000);
    // merges.txt of GPT-2 begins "Ġ t", "Ġ a", "h e", "i n", "r e".
    expect(model.merges.slice(0, 5)).toEqual([['Ġ', 't'], ['Ġ', 'a'], ['h', 'e'], ['i', 'n'], ['r', 'e']]);
    expect(model.vocab['Ġthe']).toBe(262);
  });
});

describe('resolveTokenizer', () => {
  it('names a missing file', () => {
    const p = join(dir, 'nope', 'tokenizer.json');
    expect(() => resolveTokenizer(p)).toThrow(TokenizerError);
    expect(() => resolveTokenizer(p)).toThrow(`${p}: no such file`);
  });

  it('rejects an empty spec and a directory', () => {
    expect(() => resolveTokenizer('  ')).toThrow(/empty value/);
    expect(() => resolveTokenizer(dir)).toThrow(`${dir}: not a file`);
  });

  it('names a file that is not JSON, or JSON that is not a tokenizer', () => {
    const cases: [string, string, RegExp][] = [
      ['notjson.json', '{"model": ', /invalid JSON/],
      ['array.json', '[1, 2]', /expected a JSON object/],
      ['config.json', JSON.stringify({ vocab_size: 50257, n_layer: 12 }), /no "model" object/],
      ['novocab.json', JSON.stringify({ model: { type: 'BPE' } }), /no "model.vocab"/],
      ['noeot.json', JSON.stringify({ model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: [['a', 'b']] }, normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [] }), /no end-of-text token "<\|endoftext\|>"/],
    ];
    for (const [name, body, err] of cases) {
      const p = join(dir, name);
      writeFileSync(p, body);
      expect(() => resolveTokenizer(p), name).toThrow(TokenizerError);
      expect(() => resolveTokenizer(p), name).toThrow(p);
      expect(() => resolveTokenizer(p), name).toThrow(err);
    }
  });

  it('loads a small non-GPT-2 tokenizer.json whose end-of-text is id 0 (the CodeParrot layout)', () => {
    const b2u = byteToUnicode();
    const vocab: Record<string, number> = { '<|endoftext|>': 0 };
    for (let b = 0; b < 256; b++) vocab[b2u[b]] = b + 1;
    vocab['de'] = 257;
    vocab['def'] = 258;
    vocab['Ġdef'] = 259;
    const json = {
      version: '1.0',
      added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', vocab, merges: ['d e', 'de f', 'Ġ def'], dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false },
    };
    const p = join(dir, 'tiny.json');
    writeFileSync(p, JSON.stringify(json));
    const t = resolveTokenizer(p);
    expect(t.eot).toBe(0);
    expect(t.vocabSize).toBe(260);
    // "def def!" → def, Ġdef, ! (byte 0x21 → id 0x22); the EOS text maps to id 0.
    expect(ids(t, 'def def!')).toEqual([258, 259, 0x21 + 1]);
    expect(ids(t, 'def<|endoftext|>')).toEqual([258, 0]);
    expect(t.decode([258, 259, 0x22])).toBe('def def!');
  });
});
