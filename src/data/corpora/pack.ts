// Packers: a stream of documents into fixed-length token sequences (spec §7.1, §7.2). Pure over an
// `encode` function (text → token ids), so they run with any tokenizer and are tested on toy ones.
//
// A sequence is `{ ids, lossMask, length }`: `ids` holds exactly `context` tokens, `lossMask[p] = 1`
// when token p is a label (HF semantics: labels = ids, pads ignored; the model's output at p-1 is
// trained to predict it), and `length` counts the real (non-pad) tokens.

import { codePoints } from './files.ts';

/** Text → token ids (GPT-2 BPE, the CodeParrot BPE, or a toy tokenizer in tests). */
export type Encode = (text: string) => ArrayLike<number>;

export interface Sequence {
  ids: Int32Array;
  lossMask: Uint8Array;
  /** Real tokens; the rest (to `ids.length`) is padding with lossMask 0. */
  length: number;
}

type Docs<T> = AsyncIterable<T> | Iterable<T>;

function checkContext(context: number): void {
  if (!Number.isSafeInteger(context) || context < 1) throw new RangeError(`context must be a positive integer, got ${context}`);
}

/** A FIFO of token ids that hands out fixed-length blocks. */
class TokenQueue {
  private buf = new Int32Array(1024);
  private start = 0;
  private end = 0;

  get size(): number {
    return this.end - this.start;
  }

  push(ids: ArrayLike<number>): void {
    if (this.end + ids.length > this.buf.length) {
      const size = this.size;
      if (size + ids.length > this.buf.length / 2) {
        const next = new Int32Array(Math.max(2 * (size + ids.length), 1024));
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      } else this.buf.copyWithin(0, this.start, this.end);
      this.start = 0;
      this.end = size;
    }
    for (let i = 0; i < ids.length; i++) this.buf[this.end++] = ids[i]!;
  }

  take(n: number): Int32Array {
    const out = this.buf.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }

  clear(): void {
    this.start = this.end = 0;
  }
}

const full = (ids: Int32Array): Sequence => ({ ids, lossMask: new Uint8Array(ids.length).fill(1), length: ids.length });

/**
 * C4 training packing (§7.1): each document is encoded on its own, all tokens are concatenated with no
 * separator, and the stream is cut into non-overlapping `context`-token sequences; the remainder after
 * the last full sequence is dropped. The generator's return value is the number of dropped tokens.
 */
export async function* packConcatenated(docs: Docs<{ text: string }>, encode: Encode, context: number): AsyncGenerator<Sequence, number> {
  checkContext(context);
  const q = new TokenQueue();
  for await (const d of docs) {
    q.push(encode(d.text));
    while (q.size >= context) yield full(q.take(context));
  }
  return q.size;
}

/**
 * C4 validation packing (§7.1): each document is encoded on its own and cut into chunks of at most
 * `context` tokens (a document longer than the context gives extra chunks); each chunk is one sequence,
 * right-padded with `padId` (GPT-2: EOS 50256) whose pad positions carry no loss. A document with no
 * tokens gives no sequence.
 */
export async function* packPerDocument(docs: Docs<{ text: string }>, encode: Encode, context: number, padId: number): AsyncGenerator<Sequence> {
  checkContext(context);
  for await (const d of docs) {
    const tokens = encode(d.text);
    for (let s = 0; s < tokens.length; s += context) {
      const n = Math.min(context, tokens.length - s);
      const ids = new Int32Array(context).fill(padId);
      for (let i = 0; i < n; i++) ids[i] = tokens[s + i]!;
      const lossMask = new Uint8Array(context);
      lossMask.fill(1, 0, n);
      yield { ids, lossMask, length: n };
    }
  }
}

export interface ConstantLengthOptions {
  /** Sequence length (CodeParrot: 1024). */
  context: number;
  /** The token appended after every document (CodeParrot: its `<|endoftext|>`; GPT-2: 50256). */
  eosId: number;
  /** Characters per token of the buffer size (default 3.6). */
  charsPerToken?: number;
  /** Sequences per buffer (default 1024): the buffer holds context·charsPerToken·numSequences characters. */
  numSequences?: number;
}

/**
 * CodeParrot constant-length packing (§7.2, HF ConstantLengthDataset): documents are buffered until
 * their characters (code points, Python's len) reach context·3.6·1024; each is encoded and followed by
 * `eosId`; the buffer's tokens are cut into `context`-token sequences and the buffer's tail is dropped.
 * The last buffer is the documents left when the stream ends. Labels = inputs (every lossMask is 1).
 * The generator's return value is the number of dropped tokens over all buffers.
 */
export async function* packConstantLength(docs: Docs<{ text: string }>, encode: Encode, opts: ConstantLengthOptions): AsyncGenerator<Sequence, number> {
  const { context, eosId } = opts;
  checkContext(context);
  const maxBuffer = context * (opts.charsPerToken ?? 3.6) * (opts.numSequences ?? 1024);
  let buffer: string[] = [];
  let chars = 0;
  let dropped = 0;
  const q = new TokenQueue();
  function* flush(): Generator<Sequence> {
    for (const text of buffer) {
      q.push(encode(text));
      q.push([eosId]);
      while (q.size >= context) yield full(q.take(context));
    }
    dropped += q.size;
    q.clear();
    buffer = [];
    chars = 0;
  }
  for await (const d of docs) {
    buffer.push(d.text);
    chars += codePoints(d.text);
    if (chars >= maxBuffer) yield* flush();
  }
  if (buffer.length) yield* flush();
  return dropped;
}
