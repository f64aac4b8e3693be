// The packers of src/data/corpora/pack.ts on hand-computed cases: a toy tokenizer (a=1, b=2, …) makes
// every boundary checkable by hand; GPT-2 ids of "Hello world" (15496, 995) and " Hello" (18435) check
// the real tokenizer wrapper.
import { describe, expect, it } from 'vitest';
import { codePoints, countGpt2Tokens, encodeGpt2, packConcatenated, packConstantLength, packPerDocument, type Sequence } from '../../src/data/corpora/index.ts';

/** Toy tokenizer: one id per character, a=1 … z=26. */
const toy = (text: string): number[] => [...text].map((c) => c.charCodeAt(0) - 96);

async function collect<R>(it: AsyncGenerator<Sequence, R>): Promise<{ seqs: { ids: number[]; mask: number[]; length: number }[]; ret: R }> {
  const seqs = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { seqs, ret: r.value };
    seqs.push({ ids: [...r.value.ids], mask: [...r.value.lossMask], length: r.value.length });
  }
}

describe('packConcatenated (C4 training, §7.1)', () => {
  it('joins documents without a separator, cuts context-long sequences and drops the remainder', async () => {
    const { seqs, ret } = await collect(packConcatenated(['abc', 'de', 'fghij'].map((text) => ({ text })), toy, 4));
    expect(seqs.map((s) => s.ids)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(seqs.every((s) => s.mask.every((m) => m === 1) && s.length === 4)).toBe(true);
    expect(ret).toBe(2); // i, j dropped
  });

  it('a document longer than many sequences, and an exact multiple leaves nothing', async () => {
    const long = 'abcdefghijklmnopqrstuvwxyz'.repeat(200); // 5200 tokens, past the queue's first 1024
    const { seqs, ret } = await collect(packConcatenated([{ text: long }, { text: 'ab' }], toy, 7));
    expect(seqs.length).toBe(Math.floor(5202 / 7)); // 743
    expect(ret).toBe(5202 - 743 * 7); // 1
    const flat = seqs.flatMap((s) => s.ids);
    expect(flat).toEqual([...toy(long), 1, 2].slice(0, 743 * 7));
    const exact = await collect(packConcatenated([{ text: 'ab' }, { text: 'cd' }], toy, 2));
    expect(exact.seqs.map((s) => s.ids)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(exact.ret).toBe(0);
  });

  it('many short documents (the queue compacts in place) give the same stream', async () => {
    const docs = Array.from({ length: 2001 }, (_, i) => ({ text: 'abcdefg'.slice(0, 1 + (i % 7)) }));
    const stream = docs.flatMap((d) => toy(d.text)); // 2001 = 285·7 + 6 docs: 285 cycles of 1..7 chars (28 each) = 7980, + 1+…+6 = 8001 tokens
    expect(stream.length).toBe(8001);
    const { seqs, ret } = await collect(packConcatenated(docs, toy, 5));
    expect(seqs.length).toBe(1600);
    expect(ret).toBe(1);
    expect(seqs.flatMap((s) => s.ids)).toEqual(stream.slice(0, 8000));
  });

  it('GPT-2: documents are encoded one by one (no merge across the join)', async () => {
    expect(encodeGpt2('Hello world')).toEqual([15496, 995]);
    expect(encodeGpt2(' Hello world')).toEqual([18435, 995]);
    const { seqs, ret } = await collect(packConcatenated([{ text: 'Hello world' }, { text: ' Hello world' }], encodeGpt2, 3));
    expect(seqs.map((s) => s.ids)).toEqual([[15496, 995, 18435]]);
    expect(ret).toBe(1);
    // <|endoftext|> written in a text is id 50256, as the reference's Hugging Face tokenizer reads it.
    expect(encodeGpt2('a<|endoftext|>b')).toEqual([64, 50256, 65]);
    expect(countGpt2Tokens('<|endoftext|>')).toBe(1);
  });
});

describe('packPerDocument (C4 validation, §7.1)', () => {
  it('one document per sequence, long ones split into ≤ context chunks, right-padded with no loss on pads', async () => {
    const { seqs } = await collect(packPerDocument(['abcde', '', 'fg'].map((text) => ({ text })), toy, 3, 0));
    expect(seqs).toEqual([
      { ids: [1, 2, 3], mask: [1, 1, 1], length: 3 },
      { ids: [4, 5, 0], mask: [1, 1, 0], length: 2 },
      { ids: [6, 7, 0], mask: [1, 1, 0], length: 2 },
    ]);
  });

  it('pads with GPT-2 EOS', async () => {
    const { seqs } = await collect(packPerDocument([{ text: 'Hello world' }], encodeGpt2, 4, 50256));
    expect(seqs).toEqual([{ ids: [15496, 995, 50256, 50256], mask: [1, 1, 0, 0], length: 2 }]);
  });
});

describe('packConstantLength (CodeParrot, §7.2)', () => {
  it('EOS after every document, buffers of context·charsPerToken·numSequences characters, each tail dropped', async () => {
    // buffer = 3·1·2 = 6 characters: "abcd" + "ef" reaches 6 → first buffer; "g" is the last buffer.
    const { seqs, ret } = await collect(packConstantLength(['abcd', 'ef', 'g'].map((text) => ({ text })), toy, { context: 3, eosId: 0, charsPerToken: 1, numSequences: 2 }));
    // buffer 1 tokens: 1 2 3 4 EOS 5 6 EOS → [1,2,3] [4,0,5], tail [6,0] dropped; buffer 2: [7,0] dropped.
    expect(seqs.map((s) => s.ids)).toEqual([
      [1, 2, 3],
      [4, 0, 5],
    ]);
    expect(seqs.every((s) => s.mask.join('') === '111')).toBe(true);
    expect(ret).toBe(4);
  });

  it('the buffer counts code points (Python len), and the default buffer is 1024·3.6·1024 characters', async () => {
    expect(codePoints('a😀b')).toBe(3);
    expect('a😀b'.length).toBe(4);
    // "😀😀" is 2 code points (4 UTF-16 units): with a 2·1.5·1 = 3-character buffer it does not flush alone.
    const ids = (t: string): number[] => [...t].map((c) => (c === '😀' ? 9 : c.charCodeAt(0) - 96));
    const { seqs, ret } = await collect(packConstantLength(['😀😀', 'a', 'b'].map((text) => ({ text })), ids, { context: 2, eosId: 0, charsPerToken: 1.5, numSequences: 1 }));
    // buffer 1 = "😀😀" + "a" (3 code points): 9 9 0 1 0 → [9,9] [0,1], tail [0]; buffer 2 "b": [2,0].
    expect(seqs.map((s) => s.ids)).toEqual([
      [9, 9],
      [0, 1],
      [2, 0],
    ]);
    expect(ret).toBe(1);
    // Default: everything below 3,774,873.6 characters is one buffer.
    const d = await collect(packConstantLength([{ text: 'ab' }, { text: 'c' }], toy, { context: 2, eosId: 0 }));
    expect(d.seqs.map((s) => s.ids)).toEqual([
      [1, 2],
      [0, 3],
    ]);
    expect(d.ret).toBe(1);
  });

  it('rejects a bad context', async () => {
    await expect(collect(packConcatenated([], toy, 0))).rejects.toThrow('context must be a positive integer, got 0');
  });
});
