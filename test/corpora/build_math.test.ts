// The DM-Math-style generator and the math builder. Every generated answer is checked by an
// independent solver written here from the question text alone: decimals at a fixed scale of 10^6
// (the generator scales per number), gcd by Euclid on numbers, rounding by Number#toFixed / Math.round
// (no ties are generated, so floating point agrees), sorting by parseFloat, and linear equations
// parsed and solved. The built tree is read back through the DM-Math reader.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildMath, formatDec, generateFile, MATH_MODULES, roundDec, type GeneratedProblem } from '../../src/data/corpora/build/index.ts';
import { encodeProblem, mathProblems, mathTrainingStream, MATH_SPLITS, type MathSplit } from '../../src/data/corpora/index.ts';
import { PyRandom } from '../../src/util/random.ts';
import { spawnSync } from 'node:child_process';

const root = mkdtempSync(join(tmpdir(), 'kindling-build-math-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// ------------------------------------------------------------------------------------------------
// The independent reference

const N = '(-?\\d+(?:\\.\\d+)?)';
const S = 10n ** 6n;
/** A decimal text at the fixed scale 10^6 (the generator never writes more than 6 places). */
function fixed(t: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(t);
  if (!m) throw new Error(`not a decimal: ${t}`);
  const frac = (m[3] ?? '').padEnd(6, '0');
  if (frac.length > 6) throw new Error(`more than 6 places: ${t}`);
  const v = BigInt(m[2]!) * S + BigInt(frac);
  return m[1] ? -v : v;
}
/** The answer format: shortest decimal, no trailing zeros, no "-0". */
const canonical = (a: string): boolean => /^(0|-?[1-9]\d*|-?(0|[1-9]\d*)\.\d*[1-9])$/.test(a);

type Check = (q: string, a: string) => void;

const binary = (rules: [RegExp, (x: bigint, y: bigint) => bigint][]): Check => (q, a) => {
  for (const [re, f] of rules) {
    const m = re.exec(q);
    if (!m) continue;
    expect(canonical(a), `${q} → ${a}`).toBe(true);
    expect(fixed(a), `${q} → ${a}`).toBe(f(fixed(m[1]!), fixed(m[2]!)));
    return;
  }
  throw new Error(`unrecognised question: ${q}`);
};
const add = (x: bigint, y: bigint) => x + y;
const sub = (x: bigint, y: bigint) => x - y;
const r = (s: string) => new RegExp(`^${s.replace(/N/g, N)}$`);

const checkAddOrSub = binary([
  [r('What is N \\+ N\\?'), add], [r('Calculate N \\+ N\\.'), add], [r('Add N and N\\.'), add], [r('Sum N and N\\.'), add], [r('Total of N and N\\.'), add],
  [r('What is N plus N\\?'), add], [r('Work out N \\+ N\\.'), add], [r('Put together N and N\\.'), add], [r('N \\+ N'), add],
  [r('What is N - N\\?'), sub], [r('Calculate N - N\\.'), sub], [r('Subtract N from N\\.'), (b, a) => a - b], [r('What is N less than N\\?'), (b, a) => a - b],
  [r('Work out N - N\\.'), sub], [r('What is N minus N\\?'), sub], [r('N - N'), sub],
]);
const times = (x: bigint, y: bigint) => {
  const p = x * y;
  expect(p % S).toBe(0n);
  return p / S;
};
const checkMul = binary([[r('What is N times N\\?'), times], [r('Multiply N and N\\.'), times], [r('Calculate N\\*N\\.'), times], [r('Product of N and N\\.'), times], [r('Work out N \\* N\\.'), times], [r('N \\* N'), times]]);

function euclid(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b) [a, b] = [b, a % b];
  return a;
}

const checkDiv: Check = (q, a) => {
  const m = /^(?:Divide (-?\d+) by (-?\d+)\.|What is (-?\d+) divided by (-?\d+)\?|Calculate (-?\d+) divided by (-?\d+)\.|(-?\d+) divided by (-?\d+)|Work out (-?\d+) \/ (-?\d+)\.)$/.exec(q);
  if (!m) throw new Error(`unrecognised question: ${q}`);
  const [x, y] = m.slice(1).filter((s) => s !== undefined).map(BigInt) as [bigint, bigint];
  const f = /^(-?\d+)\/(\d+)$/.exec(a);
  if (f) {
    const [p, d] = [BigInt(f[1]!), BigInt(f[2]!)];
    expect(d > 1n && euclid(p, d) === 1n, `${q} → ${a} reduced`).toBe(true);
    expect(p * y, `${q} → ${a}`).toBe(x * d);
  } else {
    expect(/^-?\d+$/.test(a) && canonical(a), `${q} → ${a}`).toBe(true);
    expect(BigInt(a) * y, `${q} → ${a}`).toBe(x);
  }
};

const PLACES = ['units', 'tens', 'hundreds', 'thousands', 'ten thousands', 'hundred thousands', 'millions', 'ten millions', 'hundred millions', 'billions', 'ten billions', 'hundred billions'];
const checkPlaceValue: Check = (q, a) => {
  const m = /^(?:What is the (.+) digit of (\d+)\?|Which digit is in the (.+) place of (\d+)\?)$/.exec(q);
  if (!m) throw new Error(`unrecognised question: ${q}`);
  const name = m[1] ?? m[3]!;
  const n = m[2] ?? m[4]!;
  const k = PLACES.indexOf(name);
  expect(k >= 0 && k < n.length, q).toBe(true);
  expect(a, q).toBe(n[n.length - 1 - k]);
};

const WORDS: Record<string, number> = { one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9 };
const POWERS: Record<string, number> = { ten: 10, 'one hundred': 100, 'one thousand': 1000, 'ten thousand': 1e4, 'one hundred thousand': 1e5, 'one million': 1e6 };
const checkRound: Check = (q, a) => {
  expect(canonical(a), `${q} → ${a}`).toBe(true);
  let m = /^(?:Round (\S+) to the nearest integer\.|What is (\S+) rounded to the nearest integer\?)$/.exec(q);
  let x: string;
  let k: number;
  if (m) [x, k] = [m[1] ?? m[2]!, 0];
  else if ((m = /^(?:Round (\S+) to (\w+) decimal places?\.|What is (\S+) rounded to (\w+) decimal places?\?)$/.exec(q))) [x, k] = [m[1] ?? m[3]!, WORDS[m[2] ?? m[4]!]!];
  else if ((m = /^(?:Round (\S+) to (\d+) dps?\.|What is (\S+) rounded to (\d+) dps?\?)$/.exec(q))) [x, k] = [m[1] ?? m[3]!, Number(m[2] ?? m[4])];
  else {
    m = /^(?:Round (-?\d+) to the nearest (.+)\.|What is (-?\d+) rounded to the nearest (.+)\?)$/.exec(q);
    if (!m) throw new Error(`unrecognised question: ${q}`);
    const n = Number(m[1] ?? m[3]);
    const to = m[2] ?? m[4]!;
    const p = POWERS[to] ?? Number(to);
    expect(Number.isInteger(Math.log10(p)) && p >= 10, q).toBe(true);
    expect((Math.abs(n) % p) * 2, `${q}: a tie`).not.toBe(p);
    expect(Number(a), q).toBe(Math.sign(n) * Math.round(Math.abs(n) / p) * p || 0);
    return;
  }
  expect(k, q).toBeGreaterThanOrEqual(0);
  const frac = x.split('.')[1] ?? '';
  expect(frac.length, `${q}: more places than asked`).toBeGreaterThan(k);
  expect(/^50*$/.test(frac.slice(k)), `${q}: a tie`).toBe(false);
  expect(Number(a), q).toBe(Number(Number(x).toFixed(k)) || 0);
};

const checkGcd: Check = (q, a) => {
  const m = /^(?:What is|Calculate) the (?:greatest|highest) common (?:divisor|factor) of (\d+) and (\d+)[?.]$/.exec(q);
  if (!m) throw new Error(`unrecognised question: ${q}`);
  expect(a, q).toBe(euclid(BigInt(m[1]!), BigInt(m[2]!)).toString());
};

const checkSort: Check = (q, a) => {
  const m = /^(?:Sort|Put) (.+?)(?: in (ascending|increasing|descending|decreasing) order)?\.$/.exec(q);
  if (!m) throw new Error(`unrecognised question: ${q}`);
  const xs = m[1]!.split(', ');
  expect(new Set(xs.map(Number)).size, `${q}: distinct`).toBe(xs.length);
  const down = m[2] === 'descending' || m[2] === 'decreasing';
  const want = [...xs].sort((p, r2) => (down ? Number(r2) - Number(p) : Number(p) - Number(r2)));
  expect(a, q).toBe(want.join(', '));
};

const checkClosest: Check = (q, a) => {
  let m = /^(?:What|Which) is the (?:closest|nearest) to (\S+) in (.+)\?$/.exec(q);
  let target: string;
  let items: [string, string][];
  if (m) {
    target = m[1]!;
    items = m[2]!.split(', ').map((x) => [x, x]);
  } else {
    m = /^(?:What|Which) is the (?:closest|nearest) to (\S+)\?((?: {2}\([a-j]\) \S+)+)$/.exec(q);
    if (!m) throw new Error(`unrecognised question: ${q}`);
    target = m[1]!;
    items = [...m[2]!.matchAll(/\(([a-j])\) (\S+)/g)].map((x) => [x[1]!, x[2]!]);
  }
  const t = fixed(target);
  const d = items.map(([, x]) => (fixed(x) > t ? fixed(x) - t : t - fixed(x)));
  const best = d.reduce((b, v, i) => (v < d[b]! ? i : b), 0);
  expect(d.filter((v) => v === d[best]).length, `${q}: unique closest`).toBe(1);
  expect(a, q).toBe(items[best]![0]);
};

/** a*v + c of one side of an equation: terms `v`, `-v`, `k*v`, integers, joined by " + " / " - ". */
function linearSide(s: string, v: string): [bigint, bigint] {
  let coef = 0n;
  let c = 0n;
  const parts = s.split(/ ([+-]) /);
  for (let i = 0; i < parts.length; i += 2) {
    const sign = i === 0 || parts[i - 1] === '+' ? 1n : -1n;
    const t = parts[i]!;
    let m;
    if (t === v) coef += sign;
    else if (t === `-${v}`) coef -= sign;
    else if ((m = new RegExp(`^(-?\\d+)\\*${v}$`).exec(t))) coef += sign * BigInt(m[1]!);
    else if (/^-?\d+$/.test(t)) c += sign * BigInt(t);
    else throw new Error(`bad term ${t} in ${s}`);
  }
  return [coef, c];
}
const checkLinear: Check = (q, a) => {
  const m = /^Solve (.+) = (.+) for ([a-z])\.$/.exec(q);
  if (!m) throw new Error(`unrecognised question: ${q}`);
  const [al, cl] = linearSide(m[1]!, m[3]!);
  const [ar, cr] = linearSide(m[2]!, m[3]!);
  expect(al === ar, `${q}: not a unique solution`).toBe(false);
  expect((cr - cl) % (al - ar), `${q}: not an integer solution`).toBe(0n);
  expect(a, q).toBe(((cr - cl) / (al - ar)).toString());
};

const CHECKS: Record<string, Check> = {
  algebra__linear_1d: checkLinear,
  arithmetic__add_or_sub: checkAddOrSub,
  arithmetic__mul: checkMul,
  arithmetic__div: checkDiv,
  numbers__place_value: checkPlaceValue,
  numbers__round_number: checkRound,
  numbers__gcd: checkGcd,
  comparison__sort: checkSort,
  comparison__closest: checkClosest,
};

// ------------------------------------------------------------------------------------------------

const SPLITS: MathSplit[] = ['train-easy', 'train-medium', 'train-hard', 'interpolate', 'extrapolate'];
const sample = (m: (typeof MATH_MODULES)[number], split: MathSplit, n = 400): GeneratedProblem[] => generateFile(m, split, n, 7);
/** Digits of the integer parts of the numbers in a text. */
const intDigits = (q: string): number[] => [...q.matchAll(/-?(\d+)(?:\.\d+)?/g)].map((x) => x[1]!.length);

describe('the problem generators', () => {
  it('cover the documented modules: linear_1d, add_or_sub, mul, div, place_value, round_number, gcd, sort, closest', () => {
    expect(MATH_MODULES.map((m) => m.name).sort()).toEqual(Object.keys(CHECKS).sort());
  });

  for (const m of MATH_MODULES) {
    it(`${m.name}: every answer agrees with the independent solver, at every level`, () => {
      for (const split of SPLITS) {
        if (split === 'extrapolate' && !m.extrapolate) continue;
        for (const p of sample(m, split)) {
          CHECKS[m.name]!(p.question, p.answer);
          // Every problem is plain ASCII (no UNK for the §7.3 tokenizer) and far inside a 512 context.
          expect(/^[\x20-\x7e]+$/.test(p.question + p.answer), p.question).toBe(true);
          expect(encodeProblem(p).ids.length).toBeLessThan(256);
        }
      }
    });
  }

  it('the solvers reject wrong answers (they can fail)', () => {
    expect(() => checkLinear('Solve 3*x + 7 = 22 for x.', '6')).toThrow();
    expect(() => checkAddOrSub('What is 0.1 + 0.2?', '0.30000000000000004')).toThrow();
    expect(() => checkAddOrSub('Subtract 2 from 5.', '-3')).toThrow();
    expect(() => checkDiv('Divide 6 by -4.', '-6/4')).toThrow();
    expect(() => checkRound('Round 2.675 to two decimal places.', '2.68')).toThrow(/a tie/);
    expect(() => checkRound('Round 2.6751 to two decimal places.', '2.67')).toThrow();
    expect(() => checkClosest('What is the closest to 0 in 1, -1, 5?', '1')).toThrow(/unique/);
    expect(() => checkPlaceValue('What is the tens digit of 345?', '5')).toThrow();
    expect(() => checkSort('Sort 3, 1, 2 in decreasing order.', '1, 2, 3')).toThrow();
    expect(() => checkGcd('What is the greatest common divisor of 12 and 18?', '3')).toThrow();
    checkLinear('Solve 3*x + 7 = 22 for x.', '5');
    checkRound('Round 2.6751 to two decimal places.', '2.68');
  });

  it('exact helpers: formatDec, roundDec (half the dropped unit is a tie: null)', () => {
    expect(formatDec({ v: -120n, s: 2 })).toBe('-1.2');
    expect(formatDec({ v: 5n, s: 3 })).toBe('0.005');
    expect(formatDec({ v: 0n, s: 2 })).toBe('0');
    expect(roundDec({ v: 2675n, s: 3 }, 2)).toBeNull();
    expect(roundDec({ v: -26751n, s: 4 }, 2)).toEqual({ v: -268n, s: 2 });
    expect(roundDec({ v: 123456n, s: 0 }, -3)).toEqual({ v: 123000n, s: 0 });
  });

  it('difficulty sets the number sizes; extrapolate is larger (or longer) than train-hard', () => {
    const by = (name: string, split: MathSplit) => sample(MATH_MODULES.find((m) => m.name === name)!, split, 300);
    const maxDigits = (ps: GeneratedProblem[]) => Math.max(...ps.flatMap((p) => intDigits(p.question)));
    const minDigits = (ps: GeneratedProblem[]) => Math.min(...ps.flatMap((p) => intDigits(p.question)));
    expect(maxDigits(by('arithmetic__add_or_sub', 'train-easy'))).toBe(2);
    expect(maxDigits(by('arithmetic__add_or_sub', 'train-hard'))).toBe(6);
    expect(minDigits(by('arithmetic__add_or_sub', 'extrapolate'))).toBe(7);
    expect(maxDigits(by('arithmetic__mul', 'train-hard'))).toBe(3);
    expect(minDigits(by('arithmetic__mul', 'extrapolate'))).toBe(4);
    expect(maxDigits(by('numbers__place_value', 'train-hard'))).toBe(7);
    expect(minDigits(by('numbers__place_value', 'extrapolate'))).toBe(8);
    const len = (ps: GeneratedProblem[]) => ps.map((p) => p.answer.split(', ').length);
    expect(Math.max(...len(by('comparison__sort', 'train-hard')))).toBe(5);
    expect(Math.min(...len(by('comparison__sort', 'extrapolate')))).toBe(6);
  });

  it('is deterministic per (seed, module, split) and differs across seeds', () => {
    const m = MATH_MODULES[0]!;
    expect(generateFile(m, 'train-easy', 50, 1)).toEqual(generateFile(m, 'train-easy', 50, 1));
    expect(generateFile(m, 'train-easy', 50, 2)).not.toEqual(generateFile(m, 'train-easy', 50, 1));
    // The file's generator is CPython's random.Random(seed + (module << 32) + ((split + 1) << 64)):
    // linear_1d (module 0) draws its variable (choice of 25 letters), then the solution (randint).
    const py = spawnSync('python3', ['-c', 'import random\nfor k in range(1, 4):\n    r = random.Random(k + (0 << 32) + (1 << 64)); print(r.choice("abcdfghijklmnopqrstuvwxyz"), r.randint(-10, 10))'], { encoding: 'utf8' });
    if (py.status === 0) {
      const want = py.stdout.trim().split('\n');
      expect([1, 2, 3].map((k) => {
        const p = generateFile(m, 'train-easy', 1, k)[0]!;
        return `${/ for ([a-z])\.$/.exec(p.question)![1]} ${p.answer}`;
      })).toEqual(want);
    }
    // One generator per file: a file does not depend on the others' sizes.
    expect(generateFile(m, 'train-hard', 20, 1)).toEqual(generateFile(m, 'train-hard', 40, 1).slice(0, 20));
  });
});

describe('buildMath', () => {
  it('writes the released folder layout; the DM-Math reader reads exactly the generated problems', async () => {
    const out = join(root, 'out1');
    const r = await buildMath({ out, trainProblems: 30, evalProblems: 12, seed: 5 });
    const dir = join(out, 'mathematics_dataset-v1.0');
    expect(readdirSync(dir).sort()).toEqual([...MATH_SPLITS, 'kindling-corpus.json'].sort());
    expect(readdirSync(join(dir, 'extrapolate')).sort()).toEqual(
      ['arithmetic__add_or_sub_big', 'arithmetic__div_big', 'arithmetic__mul_big', 'comparison__closest_more', 'comparison__sort_more', 'numbers__place_value_big', 'numbers__round_number_big'].map((n) => `${n}.txt`),
    );
    for (const s of ['train-easy', 'train-medium', 'train-hard', 'interpolate']) expect(readdirSync(join(dir, s)).sort()).toEqual(Object.keys(CHECKS).sort().map((n) => `${n}.txt`));
    const got = [];
    for await (const p of mathProblems(out, { modules: 'all', strict: true })) got.push(p);
    expect(got.length).toBe(9 * 3 * 30 + 9 * 12 + 7 * 12);
    // The files are the generated problems, in order.
    const lin = got.filter((p) => p.split === 'train-medium' && p.module === 'algebra__linear_1d').map((p) => ({ question: p.question, answer: p.answer }));
    expect(lin).toEqual(generateFile(MATH_MODULES.find((m) => m.name === 'algebra__linear_1d')!, 'train-medium', 30, 5));
    // Every problem read back checks out; interpolate and extrapolate share no question with the module's train files.
    for (const p of got) CHECKS[p.module.replace(/_(big|more)$/, '')]!(p.question, p.answer);
    for (const m of MATH_MODULES) {
      const train = new Set(got.filter((p) => p.split.startsWith('train') && p.module === m.name).map((p) => p.question));
      const held = got.filter((p) => (p.split === 'interpolate' && p.module === m.name) || (p.split === 'extrapolate' && p.module === m.extrapolate));
      expect(held.filter((p) => train.has(p.question))).toEqual([]);
    }
    expect(r.splits['train-easy']).toMatchObject({ files: 9, documents: 270 });
    expect(r.splits.extrapolate).toMatchObject({ files: 7, documents: 84 });
    const chars = got.filter((p) => p.split === 'interpolate').reduce((n, p) => n + p.question.length + p.answer.length, 0);
    expect(r.splits.interpolate!.characters).toBe(chars);
    // The training sampler of §7.3 runs on it (modules 'all': the generated subset).
    const stream = mathTrainingStream(out, new PyRandom(0), { modules: 'all' });
    for (let i = 0; i < 20; i++) expect((await stream.next()).value.split).toMatch(/^train-/);
    // The §13 lists name modules that are not generated: the default 'listed' read fails naming the file.
    await expect(mathProblems(out, { splits: ['train-easy'] }).next()).rejects.toThrow(/no such file \(module .* of train-easy\)/);
  });

  it('same seed, same bytes; another seed, other files; a second build skips', async () => {
    const a = await buildMath({ out: join(root, 'a'), trainProblems: 10, evalProblems: 5, seed: 3 });
    await buildMath({ out: join(root, 'b'), trainProblems: 10, evalProblems: 5, seed: 3 });
    await buildMath({ out: join(root, 'c'), trainProblems: 10, evalProblems: 5, seed: 4 });
    const f = (o: string) => readFileSync(join(root, o, 'mathematics_dataset-v1.0', 'train-hard', 'numbers__gcd.txt'), 'utf8');
    expect(f('b')).toBe(f('a'));
    expect(f('c')).not.toBe(f('a'));
    expect(f('a').split('\n').length).toBe(2 * 10 + 1);
    const again = await buildMath({ out: join(root, 'a'), trainProblems: 99, seed: 9 });
    expect(again.skipped).toBe(true);
    expect(again.splits).toEqual(a.splits);
    expect((await buildMath({ out: join(root, 'a'), trainProblems: 11, evalProblems: 5, seed: 3, force: true })).splits['train-hard']!.documents).toBe(9 * 11);
  });
});
