// A generator of DeepMind-Mathematics-style problems (spec §7.3) for a documented subset of the
// dataset's modules, written with our own wording modelled on the released files' phrasing (e.g.
// "Solve 3*x + 7 = 22 for x." → "5"). Every answer is computed exactly: integers and decimals are
// BigInt-scaled (a decimal is v / 10^s), quotients are reduced fractions, and a draw whose answer would
// be ambiguous (a rounding tie, two values equally close) is drawn again. Randomness is CPython's
// `random.Random` (PyRandom), so a seed gives the same files on every machine.
//
// Difficulty is a level: 0 easy, 1 medium, 2 hard, 3 the extrapolation split's larger numbers / longer
// lists. The interpolation split draws a level 0–2 per problem.

import type { PyRandom } from '../../../util/random.ts';

export interface GeneratedProblem {
  question: string;
  answer: string;
}

export type Level = 0 | 1 | 2 | 3;

// ------------------------------------------------------------------------------------------------
// Exact numbers

/** A decimal v / 10^s (s ≥ 0). */
export interface Dec {
  v: bigint;
  s: number;
}

const TEN = 10n;
const pow10 = (k: number): bigint => TEN ** BigInt(k);
const abs = (x: bigint): bigint => (x < 0n ? -x : x);

/** The shortest decimal text of v / 10^s: no trailing zeros after the point, no point for an integer. */
export function formatDec(d: Dec): string {
  const neg = d.v < 0n;
  let digits = abs(d.v).toString();
  if (d.s > 0) {
    digits = digits.padStart(d.s + 1, '0');
    const int = digits.slice(0, digits.length - d.s);
    const frac = digits.slice(digits.length - d.s).replace(/0+$/, '');
    digits = frac ? `${int}.${frac}` : int;
  }
  return neg && d.v !== 0n ? `-${digits}` : digits;
}

/** Both decimals at the larger scale. */
function align(a: Dec, b: Dec): [bigint, bigint, number] {
  const s = Math.max(a.s, b.s);
  return [a.v * pow10(s - a.s), b.v * pow10(s - b.s), s];
}

const addDec = (a: Dec, b: Dec): Dec => {
  const [x, y, s] = align(a, b);
  return { v: x + y, s };
};
const subDec = (a: Dec, b: Dec): Dec => {
  const [x, y, s] = align(a, b);
  return { v: x - y, s };
};
const mulDec = (a: Dec, b: Dec): Dec => ({ v: a.v * b.v, s: a.s + b.s });
const cmpDec = (a: Dec, b: Dec): number => {
  const [x, y] = align(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
};
const absDec = (a: Dec): Dec => ({ v: abs(a.v), s: a.s });

function gcdBig(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** p/q reduced, the sign on the numerator; an integer when q divides p. */
export function formatFraction(p: bigint, q: bigint): string {
  if (q === 0n) throw new RangeError('division by zero');
  if (q < 0n) {
    p = -p;
    q = -q;
  }
  const g = gcdBig(p, q);
  const n = p / g;
  const d = q / g;
  return d === 1n ? n.toString() : `${n}/${d}`;
}

/**
 * x rounded to `places` decimal places (negative: to the nearest 10^-places), or null on an exact tie
 * (the dropped part is exactly one half), which the generators avoid rather than pick a tie rule.
 */
export function roundDec(x: Dec, places: number): Dec | null {
  const drop = x.s - places;
  if (drop <= 0) return x;
  const unit = pow10(drop);
  const m = abs(x.v);
  let q = m / unit;
  const r2 = (m % unit) * 2n;
  if (r2 === unit) return null;
  if (r2 > unit) q += 1n;
  const sign = x.v < 0n ? -1n : 1n;
  return places >= 0 ? { v: sign * q, s: places } : { v: sign * q * pow10(-places), s: 0 };
}

// ------------------------------------------------------------------------------------------------
// Drawing numbers

const coin = (rng: PyRandom): boolean => rng.randbelow(2) === 1;

/** A non-negative integer of minDigits..maxDigits digits (the digit count uniform, then the value uniform). */
function natural(rng: PyRandom, maxDigits: number, minDigits = 1): bigint {
  const d = rng.randint(minDigits, maxDigits);
  const lo = d === 1 ? 0 : 10 ** (d - 1);
  return BigInt(rng.randint(lo, 10 ** d - 1));
}

/** A signed integer of minDigits..maxDigits digits. */
const integer = (rng: PyRandom, maxDigits: number, minDigits = 1): bigint => (coin(rng) ? -natural(rng, maxDigits, minDigits) : natural(rng, maxDigits, minDigits));

/** A signed decimal with `places` places and minIntDigits..intDigits digits before the point (the low end: any). */
function decimal(rng: PyRandom, intDigits: number, places: number, minIntDigits = 0): Dec {
  return { v: integer(rng, intDigits + places, minIntDigits + places), s: places };
}

/**
 * An integer of minDigits..intDigits digits, or (from level 1 on, one time in three) a decimal of
 * 1..maxPlaces places with as many digits before the point (at the low end, any number of them).
 */
function number(rng: PyRandom, intDigits: number, level: Level, maxPlaces: number, minDigits = 1): Dec {
  if (level >= 1 && rng.randbelow(3) === 0) return decimal(rng, intDigits, rng.randint(1, maxPlaces), minDigits > 1 ? minDigits : 0);
  return { v: integer(rng, intDigits, minDigits), s: 0 };
}

/** The digit range of a level: levels 0–2 from 1 digit up, level 3 (extrapolation) only above level 2's largest. */
const digitRange = (maxByLevel: readonly number[], level: Level): [number, number] => [level === 3 ? maxByLevel[2]! + 1 : 1, maxByLevel[level]!];

const pick = <T>(rng: PyRandom, xs: readonly T[]): T => rng.choice(xs);
const fill = (template: string, vars: Record<string, string>): string => template.replace(/\{(\w+)\}/g, (_, k: string) => vars[k]!);

// ------------------------------------------------------------------------------------------------
// arithmetic

const ADD_TEMPLATES = ['What is {a} + {b}?', 'Calculate {a} + {b}.', 'Add {a} and {b}.', 'Sum {a} and {b}.', 'Total of {a} and {b}.', 'What is {a} plus {b}?', 'Work out {a} + {b}.', 'Put together {a} and {b}.', '{a} + {b}'];
const SUB_TEMPLATES = ['What is {a} - {b}?', 'Calculate {a} - {b}.', 'Subtract {b} from {a}.', 'What is {b} less than {a}?', 'Work out {a} - {b}.', 'What is {a} minus {b}?', '{a} - {b}'];

export function addOrSub(rng: PyRandom, level: Level): GeneratedProblem {
  const [lo, hi] = digitRange([2, 4, 6, 10], level);
  const a = number(rng, hi, level, Math.min(level, 3), lo);
  const b = number(rng, hi, level, Math.min(level, 3), lo);
  const add = coin(rng);
  const t = pick(rng, add ? ADD_TEMPLATES : SUB_TEMPLATES);
  return { question: fill(t, { a: formatDec(a), b: formatDec(b) }), answer: formatDec(add ? addDec(a, b) : subDec(a, b)) };
}

const MUL_TEMPLATES = ['What is {a} times {b}?', 'Multiply {a} and {b}.', 'Calculate {a}*{b}.', 'Product of {a} and {b}.', 'Work out {a} * {b}.', '{a} * {b}'];

export function mul(rng: PyRandom, level: Level): GeneratedProblem {
  const [aLo, aHi] = digitRange([2, 2, 3, 5], level);
  const [bLo, bHi] = digitRange([1, 2, 3, 5], level);
  const a = number(rng, aHi, level, 2, aLo);
  const b = { v: integer(rng, bHi, bLo), s: 0 };
  const [x, y] = coin(rng) ? [a, b] : [b, a];
  return { question: fill(pick(rng, MUL_TEMPLATES), { a: formatDec(x), b: formatDec(y) }), answer: formatDec(mulDec(x, y)) };
}

const DIV_TEMPLATES = ['Divide {a} by {b}.', 'What is {a} divided by {b}?', 'Calculate {a} divided by {b}.', '{a} divided by {b}', 'Work out {a} / {b}.'];

export function div(rng: PyRandom, level: Level): GeneratedProblem {
  const [lo, hi] = digitRange([1, 2, 3, 5], level);
  let b = 0n;
  while (b === 0n) b = integer(rng, hi, lo);
  // Half the time an exact quotient, else any numerator (the answer is then a reduced fraction).
  let a = 0n;
  while (a === 0n) a = coin(rng) ? b * integer(rng, hi + 1, lo) : integer(rng, hi + 1, lo);
  return { question: fill(pick(rng, DIV_TEMPLATES), { a: a.toString(), b: b.toString() }), answer: formatFraction(a, b) };
}

// ------------------------------------------------------------------------------------------------
// numbers

export const PLACE_NAMES = ['units', 'tens', 'hundreds', 'thousands', 'ten thousands', 'hundred thousands', 'millions', 'ten millions', 'hundred millions', 'billions', 'ten billions', 'hundred billions'];

export function placeValue(rng: PyRandom, level: Level): GeneratedProblem {
  const maxDigits = [3, 5, 7, 12][level]!;
  const d = rng.randint(level === 3 ? 8 : 1, maxDigits);
  const n = BigInt(rng.randint(d === 1 ? 0 : 10 ** (d - 1), 10 ** d - 1));
  const k = rng.randint(0, d - 1);
  const digit = (n / pow10(k)) % 10n;
  const t = pick(rng, ['What is the {p} digit of {n}?', 'What is the {p} digit of {n}?', 'Which digit is in the {p} place of {n}?']);
  return { question: fill(t, { p: PLACE_NAMES[k]!, n: n.toString() }), answer: digit.toString() };
}

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];
const POWER_NAMES = ['one', 'ten', 'one hundred', 'one thousand', 'ten thousand', 'one hundred thousand', 'one million'];

export function roundNumber(rng: PyRandom, level: Level): GeneratedProblem {
  for (;;) {
    if (coin(rng)) {
      // A decimal to k decimal places (k = 0: the nearest integer).
      const places = rng.randint(2, 3 + level);
      const x = decimal(rng, [1, 2, 3, 6][level]!, places, level === 3 ? 4 : 0);
      const k = rng.randint(0, places - 1);
      const r = roundDec(x, k);
      if (r === null || x.v % TEN === 0n) continue;
      const xs = formatDec(x);
      let question: string;
      if (k === 0) question = fill(pick(rng, ['Round {x} to the nearest integer.', 'What is {x} rounded to the nearest integer?']), { x: xs });
      else if (coin(rng)) question = fill(pick(rng, ['Round {x} to {k} decimal {u}.', 'What is {x} rounded to {k} decimal {u}?']), { x: xs, k: NUMBER_WORDS[k]!, u: k === 1 ? 'place' : 'places' });
      else question = fill(pick(rng, ['Round {x} to {k} {u}.', 'What is {x} rounded to {k} {u}?']), { x: xs, k: String(k), u: k === 1 ? 'dp' : 'dps' });
      return { question, answer: formatDec(r) };
    }
    // An integer to the nearest 10^k.
    const [lo, hi] = level === 3 ? [7, 10] : [2, [3, 4, 6][level]!];
    const n: Dec = { v: integer(rng, hi, lo), s: 0 };
    const digitsOfN = abs(n.v).toString().length;
    if (digitsOfN < 2) continue;
    const k = rng.randint(1, Math.min(digitsOfN - 1, 6));
    const r = roundDec(n, -k);
    if (r === null) continue;
    const to = coin(rng) ? POWER_NAMES[k]! : pow10(k).toString();
    const t = pick(rng, ['Round {n} to the nearest {to}.', 'What is {n} rounded to the nearest {to}?']);
    return { question: fill(t, { n: formatDec(n), to }), answer: formatDec(r) };
  }
}

export function gcd(rng: PyRandom, level: Level): GeneratedProblem {
  const g = natural(rng, [1, 2, 3, 4][level]!) + 1n;
  const x = natural(rng, [1, 2, 2, 3][level]!) + 1n;
  const y = natural(rng, [1, 2, 2, 3][level]!) + 1n;
  const a = g * x;
  const b = g * y;
  const t = pick(rng, ['What is the greatest common divisor of {a} and {b}?', 'What is the highest common factor of {a} and {b}?', 'Calculate the greatest common factor of {a} and {b}.', 'Calculate the highest common divisor of {a} and {b}.', 'What is the greatest common factor of {a} and {b}?']);
  return { question: fill(t, { a: a.toString(), b: b.toString() }), answer: gcdBig(a, b).toString() };
}

// ------------------------------------------------------------------------------------------------
// comparison

/** `count` distinct numbers (integers, and from level 1 on some decimals). */
function distinctNumbers(rng: PyRandom, count: number, level: Level): Dec[] {
  const out: Dec[] = [];
  const digits = [1, 2, 3, 4][level]!;
  while (out.length < count) {
    const x = number(rng, digits, level, 2);
    if (!out.some((y) => cmpDec(x, y) === 0)) out.push(x);
  }
  return out;
}

const listCount = (rng: PyRandom, level: Level): number => rng.randint([3, 3, 4, 6][level]!, [3, 4, 5, 10][level]!);

export function sort(rng: PyRandom, level: Level): GeneratedProblem {
  const xs = distinctNumbers(rng, listCount(rng, level), level);
  const [t, descending] = pick(rng, [
    ['Sort {l} in ascending order.', false],
    ['Sort {l} in increasing order.', false],
    ['Put {l} in ascending order.', false],
    ['Sort {l}.', false],
    ['Sort {l} in descending order.', true],
    ['Sort {l} in decreasing order.', true],
    ['Put {l} in decreasing order.', true],
  ] as const);
  const sorted = [...xs].sort((a, b) => (descending ? cmpDec(b, a) : cmpDec(a, b)));
  return { question: fill(t, { l: xs.map(formatDec).join(', ') }), answer: sorted.map(formatDec).join(', ') };
}

export function closest(rng: PyRandom, level: Level): GeneratedProblem {
  for (;;) {
    const xs = distinctNumbers(rng, listCount(rng, level), level);
    const target = number(rng, [1, 2, 3, 4][level]!, level, 2);
    const dist = xs.map((x) => absDec(subDec(x, target)));
    let best = 0;
    for (let i = 1; i < xs.length; i++) if (cmpDec(dist[i]!, dist[best]!) < 0) best = i;
    if (dist.some((d, i) => i !== best && cmpDec(d, dist[best]!) === 0)) continue;
    const tt = formatDec(target);
    if (coin(rng)) {
      const t = pick(rng, ['What is the closest to {t} in {l}?', 'What is the nearest to {t} in {l}?', 'Which is the closest to {t} in {l}?']);
      return { question: fill(t, { t: tt, l: xs.map(formatDec).join(', ') }), answer: formatDec(xs[best]!) };
    }
    const letters = 'abcdefghij';
    const options = xs.map((x, i) => `(${letters[i]}) ${formatDec(x)}`).join('  ');
    const t = pick(rng, ['Which is the closest to {t}?', 'Which is the nearest to {t}?', 'What is the closest to {t}?']);
    return { question: `${fill(t, { t: tt })}  ${options}`, answer: letters[best]! };
  }
}

// ------------------------------------------------------------------------------------------------
// algebra

/** `a*v + b` as written in the dataset: `v`, `-v`, `3*v`, `3*v - 7`, or a constant when a = 0. */
function linear(a: bigint, v: string, b: bigint): string {
  const head = a === 1n ? v : a === -1n ? `-${v}` : a === 0n ? '' : `${a}*${v}`;
  if (head === '') return b.toString();
  return b === 0n ? head : b > 0n ? `${head} + ${b}` : `${head} - ${-b}`;
}

const VARIABLES = 'abcdfghijklmnopqrstuvwxyz';

export function linear1d(rng: PyRandom, level: Level): GeneratedProblem {
  const L = Math.min(level, 2);
  const xMax = [10, 50, 200][L]!;
  const aMax = [10, 50, 200][L]!;
  const bMax = [20, 200, 1000][L]!;
  const v = VARIABLES[rng.randbelow(VARIABLES.length)]!;
  const x = BigInt(rng.randint(-xMax, xMax));
  const coef = (): bigint => {
    const c = BigInt(rng.randint(1, aMax));
    return coin(rng) ? -c : c;
  };
  const a = coef();
  const b = BigInt(rng.randint(-bMax, bMax));
  let eq: string;
  switch (rng.randbelow(4)) {
    case 0:
      eq = `${linear(a, v, b)} = ${a * x + b}`;
      break;
    case 1:
      eq = `${a * x + b} = ${linear(a, v, b)}`;
      break;
    case 2: {
      let e = coef();
      while (e === a) e = coef();
      eq = `${linear(a, v, b)} = ${linear(e, v, a * x + b - e * x)}`;
      break;
    }
    default:
      eq = `0 = ${linear(a, v, -a * x)}`;
  }
  return { question: `Solve ${eq} for ${v}.`, answer: x.toString() };
}

// ------------------------------------------------------------------------------------------------
// The module table

export interface MathModule {
  /** The module's file name in the train and interpolate folders. */
  name: string;
  /** Its file name in extrapolate (the released dataset's `_big` / `_more` variant), when it has one. */
  extrapolate?: string;
  generate: (rng: PyRandom, level: Level) => GeneratedProblem;
}

/** The generated modules, in file order. */
export const MATH_MODULES: readonly MathModule[] = [
  { name: 'algebra__linear_1d', generate: linear1d },
  { name: 'arithmetic__add_or_sub', extrapolate: 'arithmetic__add_or_sub_big', generate: addOrSub },
  { name: 'arithmetic__div', extrapolate: 'arithmetic__div_big', generate: div },
  { name: 'arithmetic__mul', extrapolate: 'arithmetic__mul_big', generate: mul },
  { name: 'comparison__closest', extrapolate: 'comparison__closest_more', generate: closest },
  { name: 'comparison__sort', extrapolate: 'comparison__sort_more', generate: sort },
  { name: 'numbers__gcd', generate: gcd },
  { name: 'numbers__place_value', extrapolate: 'numbers__place_value_big', generate: placeValue },
  { name: 'numbers__round_number', extrapolate: 'numbers__round_number_big', generate: roundNumber },
];
