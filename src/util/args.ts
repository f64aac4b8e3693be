/**
 * The one command-line parser: every `kindling` command (src/cli) and the config system's argv
 * (src/train/config.ts) go through it. A command declares its arguments as a `CommandSpec`; the same
 * spec drives parsing, validation and the `--help` text.
 *
 *   const SPEC = { command: 'kindling score', options: { 'batch-size': { type: 'int', default: 16, min: 1, doc: '…' } } } as const satisfies CommandSpec;
 *   const p = parseCommand(SPEC, argv);      // throws UsageError (exit code 2) on bad input
 *   if (p.help) console.log(formatHelp(SPEC));
 *   p.options['batch-size']                   // number
 *
 * Grammar (the same for every command):
 * - `--name value` and `--name=value`; dashes and underscores in names are interchangeable
 *   (`--max-steps` = `--max_steps`); an option's other names (`aliases`) are accepted the same way.
 *   The key in `options` is the canonical spelling that help shows.
 * - booleans: `--flag`, `--no-flag`, `--flag true|false` (also yes/no, on/off, 1/0), `--flag=false`;
 * - lists: several values (`--items a b`), a comma list (`a,b`) or a YAML flow list (`[a, b]`);
 * - `null` for a nullable option; a value may not start with `--` unless it is a number (`--seed -0`),
 *   otherwise write `--name=--value`;
 * - `-h` / `--help` anywhere asks for help (nothing else is checked then); `--` ends the options;
 * - an option given twice is an error; an unknown option is an error naming the closest known one.
 *
 * Two levels: `scanArgs` maps argv to raw values by canonical name (what the config system needs: it
 * coerces CLI and YAML values alike, with their source in the messages), and `parseCommand` adds
 * coercion, ranges, choices, defaults, required options and positionals.
 */
import { parse as parseYaml } from 'yaml';

/** A usage error: bad option, bad value, missing or extra argument. Commands exit with status 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    /** The option (canonical name, no dashes) or positional the error is about, if any. */
    readonly option?: string,
    /** For an unknown option: what was typed (without dashes) and the closest known name, if any. */
    readonly unknown?: { name: string; suggestion: string | null },
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export type OptionType = 'string' | 'int' | 'number' | 'bool' | 'list' | 'enum';

export interface OptionSpec {
  type: OptionType;
  doc: string;
  /** Used when the option is not given (and shown in help). */
  default?: unknown;
  /** Help text for the default when it is computed elsewhere (e.g. "the task's", "stdout"). */
  defaultDoc?: string;
  required?: boolean;
  /** Accepts `null` (the value null). */
  nullable?: boolean;
  /** Allowed values (`enum`, and `string`), or allowed items (`list`). */
  choices?: readonly string[];
  min?: number;
  max?: number;
  /** Strictly greater than `min`. */
  exclusiveMin?: boolean;
  /** Other names, without dashes; a one-letter alias is also accepted as `-x`. */
  aliases?: readonly string[];
  /** The value's placeholder in help (default: N for int, X for number, VALUE for string, …). */
  metavar?: string;
  /** Help section heading (default "options"). */
  group?: string;
  /** Accepted but not shown in help (internal options, compatibility keys). */
  hidden?: boolean;
  /** Takes the next argument as its value when that is not an option, else is `true`. */
  optionalValue?: boolean;
}

export interface PositionalSpec {
  name: string;
  doc: string;
  required?: boolean;
  /** Takes all remaining positional arguments (last positional only). */
  variadic?: boolean;
}

export interface CommandSpec {
  /** The command as typed, e.g. "kindling data export". */
  command: string;
  /** What the command does (paragraphs; printed after the usage line). */
  summary?: string;
  positionals?: readonly PositionalSpec[];
  options: Readonly<Record<string, OptionSpec>>;
  /** Subcommands (name or "name <arg>" → summary), listed under "commands:". */
  subcommands?: Readonly<Record<string, string>>;
  /** Further usage lines (e.g. another form of the command). */
  usage?: readonly string[];
  /** Environment variables the command reads (name → meaning). */
  env?: Readonly<Record<string, string>>;
  /** Text after the tables. */
  notes?: string;
}

type BaseOf<T> = T extends 'int' | 'number' ? number : T extends 'bool' ? boolean : T extends 'list' ? string[] : string;
type ValueOf<S> = S extends { type: infer T; nullable: true }
  ? BaseOf<T> | null | (S extends { default: unknown } | { required: true } ? never : undefined)
  : S extends { type: infer T }
    ? BaseOf<T> | (S extends { default: unknown } | { required: true } ? never : undefined)
    : never;
/** The typed option values of a spec declared `as const`. */
export type OptionValues<O> = { -readonly [K in keyof O]: ValueOf<O[K]> };

export interface Scanned {
  /** Canonical name → raw value: a string, a string[] (list given several values), or a boolean (bare or negated flag). */
  values: Map<string, string | string[] | boolean>;
  /** Canonical name → the name as typed (with dashes), for messages. */
  spelled: Map<string, string>;
  positionals: string[];
  help: boolean;
}

export interface Parsed<O = Record<string, unknown>> {
  /** `-h` or `--help` was given: print `formatHelp(spec)` and exit 0 (nothing else was checked). */
  help: boolean;
  options: O;
  /** Canonical names of the options given on the command line. */
  given: Set<string>;
  /** Positional name → value (string[] for a variadic one; undefined when absent). */
  args: Record<string, string | string[] | undefined>;
}

export const TRUE_WORDS: ReadonlySet<string> = new Set(['true', 'yes', 'on', '1']);
export const FALSE_WORDS: ReadonlySet<string> = new Set(['false', 'no', 'off', '0']);

const norm = (name: string): string => name.replace(/-/g, '_');

export function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return dp[a.length]![b.length]!;
}

/** The candidate closest to `name` (dashes = underscores), or null when none is close enough to suggest. */
export function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(norm(name), norm(c));
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : null;
}

/** Normalised name → canonical name, for every canonical name and alias. */
function nameTable(spec: CommandSpec): Map<string, string> {
  const m = new Map<string, string>();
  for (const [name, o] of Object.entries(spec.options)) {
    for (const n of [name, ...(o.aliases ?? [])]) {
      const prev = m.get(norm(n));
      if (prev !== undefined && prev !== name) throw new Error(`${spec.command}: option name "${n}" is used by --${prev} and --${name}`);
      m.set(norm(n), name);
    }
  }
  return m;
}

/** True for `-h` / `--help` before any `--`. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** `--x`, not `--5` (a negative number written oddly is a value). */
const isLongOption = (a: string): boolean => a.startsWith('--') && a !== '--' && !/^--\d/.test(a);
/** `-x` with a letter: a short option; `-5`, `-.5` and `-` are values. */
const isShortOption = (a: string): boolean => /^-[A-Za-z]/.test(a);

function unknownOption(spec: CommandSpec, typed: string, dashes: string): UsageError {
  const names = Object.entries(spec.options).flatMap(([n, o]) => (o.hidden ? [] : [n, ...(o.aliases ?? []).filter((a) => a.length > 1)]));
  const near = dashes === '--' ? closest(typed, names) : null;
  return new UsageError(`unknown option ${dashes}${typed}${near ? ` (did you mean --${near}?)` : ''}`, undefined, { name: typed, suggestion: near });
}

/**
 * Maps argv to raw values by canonical option name, without coercing them. Throws UsageError for an
 * unknown option, a missing value, or an option given twice.
 */
export function scanArgs(spec: CommandSpec, argv: readonly string[]): Scanned {
  const out: Scanned = { values: new Map(), spelled: new Map(), positionals: [], help: wantsHelp(argv) };
  if (out.help) return out;
  const table = nameTable(spec);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    const long = isLongOption(arg);
    if (!long && !isShortOption(arg)) {
      out.positionals.push(arg);
      continue;
    }
    const dashes = long ? '--' : '-';
    let typed = arg.slice(dashes.length);
    let inline: string | undefined;
    const eq = typed.indexOf('=');
    if (eq >= 0) {
      inline = typed.slice(eq + 1);
      typed = typed.slice(0, eq);
    }
    if (!long && typed.length !== 1) throw unknownOption(spec, typed, dashes);
    let name = table.get(norm(typed));
    let negated = false;
    if (name === undefined && long && norm(typed).startsWith('no_') && inline === undefined) {
      const base = table.get(norm(typed).slice(3));
      if (base !== undefined && spec.options[base]!.type === 'bool') [name, negated] = [base, true];
    }
    if (name === undefined) throw unknownOption(spec, typed, dashes);
    const shown = `${dashes}${typed}`;
    if (out.values.has(name)) throw new UsageError(`--${name}: given twice on the command line (${out.spelled.get(name)} and ${shown})`, name);
    out.spelled.set(name, shown);
    const o = spec.options[name]!;
    const next = argv[i + 1];
    let value: string | string[] | boolean;
    if (negated) value = false;
    else if (inline !== undefined) value = inline;
    else if (o.optionalValue) {
      if (next !== undefined && !isLongOption(next) && next !== '--') [value, i] = [next, i + 1];
      else value = true;
    } else if (o.type === 'bool') {
      const word = next?.toLowerCase() ?? '';
      if (TRUE_WORDS.has(word) || FALSE_WORDS.has(word)) [value, i] = [next!, i + 1];
      else value = true;
    } else if (o.type === 'list') {
      const items: string[] = [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) items.push(argv[++i]!);
      if (items.length === 0) throw new UsageError(`${shown} needs at least one value`, name);
      value = items.length === 1 ? items[0]! : items.flatMap((x) => x.split(',').map((y) => y.trim()).filter((y) => y !== ''));
    } else {
      if (next === undefined || isLongOption(next) || next === '--') throw new UsageError(`${shown} needs a value`, name);
      [value, i] = [next, i + 1];
    }
    out.values.set(name, value);
  }
  return out;
}

export interface CoerceOptions {
  /** Appended to messages in parentheses, e.g. "from --lr" or "from config.yaml". */
  where?: string;
  /** The raw value came from a command line: the string `null` means null. */
  cli?: boolean;
}

const describeRaw = (raw: unknown): string => JSON.stringify(raw) ?? String(raw);

/**
 * Converts a raw value (a command-line string, or a YAML value) to the option's type. Throws
 * UsageError "<label>: expected …, got …". Ranges and choices are checked by `checkRange`.
 */
export function coerceValue(label: string, o: OptionSpec, raw: unknown, opts: CoerceOptions = {}): unknown {
  const where = opts.where ? ` (${opts.where})` : '';
  const bad = (what: string): UsageError => new UsageError(`${label}: expected ${what}, got ${describeRaw(raw)}${where}`, label.replace(/^-+/, ''));
  if (raw === null || (opts.cli && raw === 'null')) {
    if (o.nullable) return null;
    throw new UsageError(`${label}: null is not allowed${where}`, label.replace(/^-+/, ''));
  }
  switch (o.type) {
    case 'int':
    case 'number': {
      let n: number;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'string' && raw.trim() !== '' && !Number.isNaN(Number(raw.trim()))) n = Number(raw.trim());
      else throw bad(o.type === 'int' ? 'an integer' : 'a number');
      if (!Number.isFinite(n)) throw bad('a finite number');
      if (o.type === 'int' && !Number.isSafeInteger(n)) throw bad('an integer');
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && TRUE_WORDS.has(raw.toLowerCase())) return true;
      if (typeof raw === 'string' && FALSE_WORDS.has(raw.toLowerCase())) return false;
      throw bad('true or false');
    }
    case 'string':
    case 'enum': {
      if (typeof raw === 'string') return raw;
      throw bad(opts.cli ? 'a string' : 'a string (quote it in YAML)');
    }
    case 'list': {
      let items: unknown[];
      if (Array.isArray(raw)) items = raw;
      else if (typeof raw === 'string') {
        const s = raw.trim();
        if (s.startsWith('[')) {
          let parsed: unknown;
          try {
            parsed = parseYaml(s);
          } catch {
            throw bad('a list');
          }
          if (!Array.isArray(parsed)) throw bad('a list');
          items = parsed;
        } else items = s === '' ? [] : s.split(',').map((x) => x.trim());
      } else throw bad('a list');
      return items.map((x) => {
        // YAML reads `[0, 1]` as numbers; list items are kept as their text.
        if (typeof x === 'number' && Number.isFinite(x)) return String(x);
        if (typeof x !== 'string') throw bad('a list of strings');
        return x;
      });
    }
  }
}

/** Checks `min`/`max` and `choices`; throws UsageError "<label>: must be >= 1, got 0" or "<label>: "x" is not one of a, b". */
export function checkRange(label: string, o: OptionSpec, v: unknown, where?: string): void {
  if (v === null || v === undefined) return;
  const w = where ? ` (${where})` : '';
  const option = label.replace(/^-+/, '');
  if (o.type === 'int' || o.type === 'number') {
    const n = v as number;
    if (o.min !== undefined && (o.exclusiveMin ? !(n > o.min) : !(n >= o.min))) throw new UsageError(`${label}: must be ${o.exclusiveMin ? '>' : '>='} ${o.min}, got ${n}${w}`, option);
    if (o.max !== undefined && !(n <= o.max)) throw new UsageError(`${label}: must be <= ${o.max}, got ${n}${w}`, option);
  }
  if (o.choices) {
    for (const x of o.type === 'list' ? (v as string[]) : [v as string]) {
      if (!o.choices.includes(x)) throw new UsageError(`${label}: "${x}" is not one of ${o.choices.join(', ')}${w}`, option);
    }
  }
}

/**
 * Parses argv against a spec: options (coerced, range-checked, defaulted), required options and
 * positionals. Throws UsageError; returns `{ help: true }` (nothing checked) when help was asked for.
 */
export function parseCommand<const S extends CommandSpec>(spec: S, argv: readonly string[]): Parsed<OptionValues<S['options']>> {
  const scanned = scanArgs(spec, argv);
  const options: Record<string, unknown> = {};
  const args: Record<string, string | string[] | undefined> = {};
  const given = new Set(scanned.values.keys());
  if (scanned.help) return { help: true, options: options as OptionValues<S['options']>, given, args };
  for (const [name, o] of Object.entries(spec.options)) {
    if (scanned.values.has(name)) {
      const label = `--${name}`;
      const v = coerceValue(label, o, scanned.values.get(name), { cli: true });
      checkRange(label, o, v);
      options[name] = v;
    } else if (o.required) {
      throw new UsageError(`--${name} is required (${o.doc})`, name);
    } else {
      options[name] = Array.isArray(o.default) ? [...(o.default as unknown[])] : o.default;
    }
  }
  const pos = [...scanned.positionals];
  for (const p of spec.positionals ?? []) {
    if (p.variadic) args[p.name] = pos.splice(0);
    else args[p.name] = pos.shift();
    const missing = p.variadic ? (args[p.name] as string[]).length === 0 : args[p.name] === undefined;
    if (missing && p.required) throw new UsageError(`missing <${p.name}>: ${p.doc}`, p.name);
  }
  if (pos.length) throw new UsageError(`unexpected argument${pos.length > 1 ? 's' : ''} ${pos.map((x) => JSON.stringify(x)).join(' ')}`);
  return { help: false, options: options as OptionValues<S['options']>, given, args };
}

// ------------------------------------------------------------------------------------------------
// Help

const WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(/ +/)) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  return lines;
}

/** Free text: blocks separated by blank lines; a block with an indented line is kept as written, others are re-wrapped. */
function formatNotes(text: string): string[] {
  return text
    .trim()
    .split(/\n\s*\n/)
    .flatMap((block, i) => {
      const lines = block.split('\n');
      const body = lines.some((l) => /^\s/.test(l)) ? lines.map((l) => l.trimEnd()) : wrap(lines.join(' '), WIDTH);
      return i === 0 ? body : ['', ...body];
    });
}

/** Rows of a two-column table, the second column wrapped and aligned. */
function table(rows: [string, string][]): string[] {
  const w = Math.min(Math.max(...rows.map(([a]) => a.length)), 30);
  const out: string[] = [];
  for (const [a, b] of rows) {
    const text = wrap(b, WIDTH - w - 4);
    if (a.length > w) out.push(`  ${a}`, ...text.map((l) => `  ${''.padEnd(w)}  ${l}`));
    else out.push(...text.map((l, i) => `  ${(i === 0 ? a : '').padEnd(w)}  ${l}`.trimEnd()));
  }
  return out;
}

function metavar(o: OptionSpec): string {
  if (o.type === 'bool') return '';
  if (o.metavar) return ` ${o.metavar}`;
  if (o.type === 'enum' && o.choices) return ` ${o.choices.join('|')}`;
  return ` ${{ int: 'N', number: 'X', string: 'VALUE', list: 'A,B,…', enum: 'VALUE' }[o.type]}`;
}

function showDefault(o: OptionSpec): string | null {
  if (o.defaultDoc !== undefined) return o.defaultDoc;
  if (o.default === undefined || typeof o.default === 'function') return null;
  if (o.type === 'bool' && o.default === false) return null;
  if (Array.isArray(o.default)) return o.default.length ? o.default.join(',') : '(none)';
  return o.default === null ? 'null' : String(o.default);
}

function optionRow(name: string, o: OptionSpec): [string, string] {
  const short = (o.aliases ?? []).filter((a) => a.length === 1).map((a) => `-${a}, `).join('');
  const extra: string[] = [];
  if (o.required) extra.push('required');
  const d = showDefault(o);
  if (d !== null) extra.push(`default: ${d}`);
  if (o.choices && o.type !== 'enum') extra.push(`${o.type === 'list' ? 'items' : 'one of'}: ${o.choices.join(', ')}`);
  if (o.nullable && o.default !== null) extra.push('or null');
  const long = (o.aliases ?? []).filter((a) => a.length > 1);
  if (long.length) extra.push(`also --${long.join(', --')}`);
  return [`${short}--${name}${metavar(o)}`, `${o.doc}${extra.length ? ` (${extra.join('; ')})` : ''}`];
}

/** The usage line(s) of a spec. */
export function usageLines(spec: CommandSpec): string[] {
  const parts = [spec.command];
  if (spec.subcommands) parts.push('<command>');
  for (const p of spec.positionals ?? []) {
    const s = `<${p.name}>${p.variadic ? '...' : ''}`;
    parts.push(p.required ? s : `[${s}]`);
  }
  for (const [name, o] of Object.entries(spec.options)) if (o.required) parts.push(`--${name}${metavar(o)}`);
  parts.push('[options]');
  return [parts.join(' '), ...(spec.usage ?? [])];
}

/** The help text of a command: usage, summary, commands, arguments, options (by group), environment, notes. */
export function formatHelp(spec: CommandSpec): string {
  const [first, ...more] = usageLines(spec);
  const out = [`usage: ${first}`, ...more.map((l) => `       ${l}`)];
  if (spec.summary) out.push('', ...wrap(spec.summary, WIDTH));
  if (spec.subcommands) out.push('', 'commands:', ...table(Object.entries(spec.subcommands)));
  if (spec.positionals?.length) out.push('', 'arguments:', ...table(spec.positionals.map((p) => [`<${p.name}>`, p.doc])));
  const groups = new Map<string, [string, string][]>();
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.hidden) continue;
    const g = o.group ?? 'options';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(optionRow(name, o));
  }
  if (!groups.has('options')) groups.set('options', []);
  groups.get('options')!.push(['-h, --help', 'show this help and exit']);
  const rows = [...groups.values()].flat();
  const w = Math.min(Math.max(...rows.map(([a]) => a.length)), 30);
  for (const [g, r] of groups) {
    out.push('', `${g}:`, ...table(r.map(([a, b]) => [a.padEnd(w), b])));
  }
  if (spec.env && Object.keys(spec.env).length) out.push('', 'environment:', ...table(Object.entries(spec.env)));
  const flags = Object.values(spec.options).filter((o) => !o.hidden);
  const notes = [
    'Option names take dashes or underscores (--max-steps = --max_steps); --name=value works too' +
      (flags.some((o) => o.type === 'bool') ? '; a flag also takes --no-name or --name false.' : '.'),
  ];
  if (spec.notes) out.push('', ...formatNotes(spec.notes));
  if (flags.length) out.push('', ...wrap(notes[0]!, WIDTH));
  return out.join('\n') + '\n';
}
