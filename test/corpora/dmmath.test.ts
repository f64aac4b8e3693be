// DeepMind-Math (src/data/corpora/dmmath.ts): the §7.3 character tokenizer, problem encoding and
// packing, problem accuracy with and without the reference quirk (hand-computed), and the
// mathematics_dataset-v1.0 folder tree written by the test into a temp dir.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Diagnostics,
  EXTRAPOLATION_MODULES,
  INTERPOLATION_MODULES,
  MATH_VOCAB,
  decodeMathChars,
  encodeMathChars,
  encodeProblem,
  mathProblems,
  mathTrainingStream,
  packProblems,
  problemAccuracy,
  type MathSequence,
} from '../../src/data/corpora/index.ts';
import { PyRandom } from '../../src/util/random.ts';

const root = mkdtempSync(join(tmpdir(), 'kindling-dmmath-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('character tokenizer (§7.3)', () => {
  it('a–z 0–25, A–Z 26–51, 0–9 52–61, punctuation 62–93, space 94; anything else UNK 96', () => {
    expect(MATH_VOCAB).toBe(99);
    expect(encodeMathChars('azAZ09')).toEqual([0, 25, 26, 51, 52, 61]);
    expect(encodeMathChars('!"+?~ ')).toEqual([62, 63, 72, 82, 93, 94]);
    expect(encodeMathChars('\\`{')).toEqual([62 + 23, 62 + 27, 62 + 28]); // \\ follows the 23 characters !"#$%&'()*+,-./:;<=>?@[
    expect(encodeMathChars('é\t😀')).toEqual([96, 96, 96]);
    expect(decodeMathChars([97, 7, 8, 98, 52, 95, 96])).toBe('<bos>hi<sep>0<pad><unk>');
    expect(() => decodeMathChars([99])).toThrow('id 99 is outside the DM-Math vocabulary (0..98)');
  });

  it('a problem is [BOS] question [SEP] answer with loss on the answer only', () => {
    expect(encodeProblem({ question: '1+1?', answer: '2' })).toEqual({ ids: [97, 53, 72, 53, 82, 98, 54], lossMask: [0, 0, 0, 0, 0, 0, 1] });
  });
});

const P1 = { question: 'ab', answer: 'c' }; // [97 0 1 98 2]       5 tokens
const P2 = { question: 'd', answer: 'ef' }; // [97 3 98 4 5]       5 tokens
const P3 = { question: 'ghi', answer: 'j' }; // [97 6 7 8 98 9]    6 tokens

async function packed(problems: { question: string; answer: string }[], context: number): Promise<MathSequence[]> {
  return all(packProblems(problems, { context }));
}

describe('problem packing (§7.3)', () => {
  it('appends whole problems while they fit, then pads with PAD (mask 0) and starts over', async () => {
    const seqs = await packed([P1, P2, P3], 10);
    expect(seqs.map((s) => [...s.ids])).toEqual([
      [97, 0, 1, 98, 2, 97, 3, 98, 4, 5],
      [97, 6, 7, 8, 98, 9, 95, 95, 95, 95],
    ]);
    expect(seqs.map((s) => [...s.lossMask])).toEqual([
      [0, 0, 0, 0, 1, 0, 0, 0, 1, 1],
      [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    ]);
    expect(seqs.map((s) => [s.length, s.problems])).toEqual([
      [10, 2],
      [6, 1],
    ]);
    // context 9: P1 alone (P2 would make 10), then P2 (P3 would make 11), then P3
    expect((await packed([P1, P2, P3], 9)).map((s) => s.problems)).toEqual([1, 1, 1]);
  });

  it('a problem longer than the context is an error, or left out through onOversize', async () => {
    await expect(packed([P3], 5)).rejects.toThrow('a problem of 6 tokens does not fit the context 5');
    const over: number[] = [];
    const seqs = await all(packProblems([P1, P3, P2], { context: 5, onOversize: (_p, n) => over.push(n) }));
    expect(over).toEqual([6]);
    expect(seqs.map((s) => s.problems)).toEqual([1, 1]);
  });
});

describe('problem accuracy (§7.3)', () => {
  // Packed [P1 P2] at context 10: answer runs (predicting positions p with mask[p+1] = 1) are {3} (P1's
  // "c" = 2) and {7, 8} (P2's "ef" = 4, 5).
  const ids = [97, 0, 1, 98, 2, 97, 3, 98, 4, 5];
  const mask = [0, 0, 0, 0, 1, 0, 0, 0, 1, 1];
  const preds = (changes: Record<number, number> = {}): number[] => {
    const p = [50, 50, 50, 2, 50, 50, 50, 4, 5, 50];
    for (const [k, v] of Object.entries(changes)) p[Number(k)] = v;
    return p;
  };

  it('all right: 2/2 either way', () => {
    expect(problemAccuracy(ids, mask, preds())).toEqual({ correct: 2, total: 2 });
    expect(problemAccuracy(ids, mask, preds(), { quirk: false })).toEqual({ correct: 2, total: 2 });
  });

  it('quirk: the last character of a ≥ 2-character answer is not compared; fixed, it is', () => {
    expect(problemAccuracy(ids, mask, preds({ 8: 0 }))).toEqual({ correct: 2, total: 2 });
    expect(problemAccuracy(ids, mask, preds({ 8: 0 }), { quirk: false })).toEqual({ correct: 1, total: 2 });
    expect(problemAccuracy(ids, mask, preds({ 7: 0 }))).toEqual({ correct: 1, total: 2 });
  });

  it('a one-character answer is compared fully, quirk or not; predictions off the answers do not matter', () => {
    expect(problemAccuracy(ids, mask, preds({ 3: 1 }))).toEqual({ correct: 1, total: 2 });
    expect(problemAccuracy(ids, mask, preds({ 3: 1 }), { quirk: false })).toEqual({ correct: 1, total: 2 });
    expect(problemAccuracy(ids, mask, preds({ 0: 7, 4: 7, 9: 7 }), { quirk: false })).toEqual({ correct: 2, total: 2 });
  });

  it('rows of a batch: runs do not join across a row boundary', () => {
    // row 0 ends with an answer run (p = 2 predicts id 9 at 3); row 1 starts with mask 1 at position 0,
    // which nothing predicts, then a run at p = 0..1 of row 1 (positions 1, 2).
    const bIds = [97, 6, 98, 9, 1, 2, 3, 0];
    const bMask = [0, 0, 0, 1, 1, 1, 1, 0];
    const good = [0, 0, 9, 0, 2, 3, 0, 0];
    expect(problemAccuracy(bIds, bMask, good, { rowLength: 4, quirk: false })).toEqual({ correct: 2, total: 2 });
    expect(problemAccuracy(bIds, bMask, good, { quirk: false })).toEqual({ correct: 0, total: 1 }); // one row: one run p = 2..5
    expect(() => problemAccuracy(bIds, bMask, good, { rowLength: 3 })).toThrow('rowLength 3 does not divide the length 8');
  });
});

// ------------------------------------------------------------------------------------------------
// The folder tree

function writeModule(dir: string, split: string, module: string, lines: string | Buffer): string {
  mkdirSync(join(dir, split), { recursive: true });
  const f = join(dir, split, `${module}.txt`);
  writeFileSync(f, lines);
  return f;
}

describe('mathematics_dataset-v1.0 tree', () => {
  const tree = join(root, 'unpacked');
  const ds = join(tree, 'mathematics_dataset-v1.0');
  writeModule(ds, 'train-easy', 'algebra__linear_1d', 'Solve 2*x = 4 for x.\n2\nSolve -3*y = 9.  \n-3\n');
  writeModule(ds, 'train-easy', 'arithmetic__add_or_sub', 'What is 1 + 1?\n2\n');
  writeModule(ds, 'interpolate', 'algebra__linear_1d', 'Solve 5*x = 10.\n2\n');
  writeModule(ds, 'extrapolate', 'arithmetic__div_big', 'Divide 100 by 4.\n25\n');

  it('reads splits in order, modules by name, pairs of lines stripped; the parent folder works too', async () => {
    const got = await all(mathProblems(tree, { modules: 'all' }));
    expect(got.map((p) => [p.split, p.module, p.question, p.answer, p.line])).toEqual([
      ['train-easy', 'algebra__linear_1d', 'Solve 2*x = 4 for x.', '2', 1],
      ['train-easy', 'algebra__linear_1d', 'Solve -3*y = 9.', '-3', 3],
      ['train-easy', 'arithmetic__add_or_sub', 'What is 1 + 1?', '2', 1],
      ['interpolate', 'algebra__linear_1d', 'Solve 5*x = 10.', '2', 1],
      ['extrapolate', 'arithmetic__div_big', 'Divide 100 by 4.', '25', 1],
    ]);
    expect(got[0]!.source).toBe(join(ds, 'train-easy', 'algebra__linear_1d.txt'));
    expect((await all(mathProblems(ds, { modules: 'all', splits: ['extrapolate', 'interpolate'] }))).map((p) => p.split)).toEqual(['extrapolate', 'interpolate']);
    expect((await all(mathProblems(ds, { modules: ['arithmetic__add_or_sub'], splits: ['train-easy'] }))).map((p) => p.answer)).toEqual(['2']);
    expect((await all(mathProblems(ds, { modules: 'all', maxProblems: 2 }))).length).toBe(2);
  });

  it('the §13 lists: 56 and 15 modules; a listed module missing from the tree fails naming its file', async () => {
    expect(INTERPOLATION_MODULES.length).toBe(56);
    expect(new Set(INTERPOLATION_MODULES).size).toBe(56);
    expect(EXTRAPOLATION_MODULES.length).toBe(15);
    expect(INTERPOLATION_MODULES[0]).toBe('arithmetic__add_or_sub');
    expect(INTERPOLATION_MODULES[55]).toBe('numbers__place_value_composed');
    expect(EXTRAPOLATION_MODULES[14]).toBe('probability__swr_p_sequence_more_samples');
    await expect(all(mathProblems(ds))).rejects.toThrow(`${join(ds, 'train-easy', 'arithmetic__add_or_sub_in_base.txt')}: no such file (module arithmetic__add_or_sub_in_base of train-easy)`);
  });

  it('missing path, a folder without splits, a missing split fail naming them', async () => {
    await expect(all(mathProblems(join(root, 'nope')))).rejects.toThrow(`${join(root, 'nope')}: no such file or directory`);
    mkdirSync(join(root, 'empty'));
    await expect(all(mathProblems(join(root, 'empty')))).rejects.toThrow(`${join(root, 'empty')}: holds none of the folders train-easy, train-medium, train-hard, interpolate, extrapolate`);
    await expect(all(mathProblems(ds, { splits: ['train-hard'] }))).rejects.toThrow(`${join(ds, 'train-hard')}: no such split folder`);
  });

  it('a question without answer, a non-UTF-8 pair, an empty module file: skipped with warnings; strict fails', async () => {
    const d = join(root, 'bad');
    const odd = writeModule(d, 'interpolate', 'a_odd', 'Q1?\nA1\nQ2 without answer\n');
    const latin = writeModule(d, 'interpolate', 'b_latin', Buffer.concat([Buffer.from('Q\n1\nCaf'), Buffer.from([0xe9]), Buffer.from('?\n2\nQ3\n3\n')]));
    const empty = writeModule(d, 'interpolate', 'c_empty', '');
    const warnings: string[] = [];
    const diag = new Diagnostics({ onWarning: (m) => warnings.push(m) });
    const got = await all(mathProblems(d, { modules: 'all', diagnostics: diag }));
    expect(got.map((p) => `${p.question}=${p.answer}`)).toEqual(['Q1?=A1', 'Q=1', 'Q3=3']);
    expect(diag.skipped).toBe(2);
    expect(warnings).toEqual([
      `${odd}:3: a question line without an answer line at the end of the file; record skipped`,
      `${latin}:3-4: a question/answer pair with bytes that are not valid UTF-8; record skipped`,
      `${empty}: empty shard, no records`,
    ]);
    await expect(all(mathProblems(d, { modules: 'all', strict: true }))).rejects.toThrow(`${odd}:3: a question line without an answer line at the end of the file (strict: not skipped)`);
  });

  it('the training stream: difficulty then module by random.choice, each file read in order and cycled', async () => {
    const d = join(root, 'train');
    const splits = ['train-easy', 'train-medium', 'train-hard'];
    for (const s of splits) for (const m of INTERPOLATION_MODULES) writeModule(d, s, m, `${s}/${m}/q0\na0\n${s}/${m}/q1\na1\n`);
    const stream = mathTrainingStream(d, new PyRandom(42));
    const ref = new PyRandom(42);
    const pos = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const s = splits[ref.randbelow(3)]!;
      const m = INTERPOLATION_MODULES[ref.randbelow(56)]!;
      const k = pos.get(`${s}/${m}`) ?? 0;
      pos.set(`${s}/${m}`, k + 1);
      const p = (await stream.next()).value;
      expect([p.question, p.answer, p.split, p.module]).toEqual([`${s}/${m}/q${k % 2}`, `a${k % 2}`, s, m]);
    }
    expect(Math.max(...pos.values())).toBeGreaterThan(2); // some file was cycled
    await stream.return(undefined as never);
  });
});
