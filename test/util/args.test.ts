// The one command-line parser (src/util/args.ts): grammar, aliases, unknown options with a suggestion,
// type and range errors naming the option, positionals, and the help generated from a spec.
import { describe, expect, it } from 'vitest';
import { closest, formatHelp, parseCommand, scanArgs, UsageError, wantsHelp, type CommandSpec } from '../../src/util/args.ts';

const SPEC = {
  command: 'kindling demo',
  summary: 'A demo command.',
  positionals: [
    { name: 'task', required: true, doc: 'the task' },
    { name: 'more', variadic: true, doc: 'further arguments' },
  ],
  options: {
    'max-steps': { type: 'int', default: 10, min: 1, metavar: 'N', doc: 'optimizer steps' },
    lr: { type: 'number', default: 0.5, min: 0, exclusiveMin: true, aliases: ['learning_rate'], doc: 'learning rate' },
    format: { type: 'enum', choices: ['json', 'bin'], default: 'json', doc: 'output format' },
    out: { type: 'string', metavar: 'DIR', defaultDoc: 'runs/<name>', doc: 'output directory' },
    fresh: { type: 'bool', default: false, doc: 'start over' },
    color: { type: 'bool', group: 'display options', doc: 'colour' },
    items: { type: 'list', default: ['a'], choices: ['a', 'b', 'c'], doc: 'items' },
    limit: { type: 'int', nullable: true, default: 3, doc: 'a limit' },
    verbose: { type: 'bool', default: false, aliases: ['v'], doc: 'say more' },
    secret: { type: 'bool', default: false, hidden: true, doc: 'internal' },
  },
  env: { KINDLING_DEMO: 'a variable' },
  notes: 'Some notes.',
} as const satisfies CommandSpec;

const parse = (...argv: string[]) => parseCommand(SPEC, argv);
function usageError(argv: string[]): UsageError {
  try {
    parse(...argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
}

describe('parseCommand', () => {
  it('fills defaults and types values', () => {
    const p = parse('sort');
    expect(p.help).toBe(false);
    expect(p.args).toEqual({ task: 'sort', more: [] });
    expect(p.options).toEqual({ 'max-steps': 10, lr: 0.5, format: 'json', out: undefined, fresh: false, color: undefined, items: ['a'], limit: 3, verbose: false, secret: false });
    expect(p.given.size).toBe(0);
    const q = parse('--max-steps', '7', 'sort', '--lr=1e-3', '--fresh', '--items', 'b', 'c', '--limit', 'null', '--out', 'x/y', 'extra');
    expect(q.options['max-steps']).toBe(7);
    expect(q.options.lr).toBe(1e-3);
    expect(q.options.fresh).toBe(true);
    expect(q.options.items).toEqual(['b', 'c']);
    expect(q.options.limit).toBeNull();
    expect(q.options.out).toBe('x/y');
    expect(q.args).toEqual({ task: 'sort', more: ['extra'] });
    expect([...q.given].sort()).toEqual(['fresh', 'items', 'limit', 'lr', 'max-steps', 'out']);
  });

  it('accepts dashes and underscores alike, aliases, and one-letter aliases', () => {
    for (const argv of [['--max-steps', '5'], ['--max_steps', '5'], ['--max_steps=5'], ['--max-steps=5']]) {
      expect(parse('t', ...argv).options['max-steps']).toBe(5);
    }
    expect(parse('t', '--learning_rate', '2').options.lr).toBe(2);
    expect(parse('t', '--learning-rate', '2').options.lr).toBe(2);
    expect(parse('t', '-v').options.verbose).toBe(true);
  });

  it('booleans: --flag, --no-flag, --flag true|false, --flag=no; an unset one stays undefined', () => {
    expect(parse('t', '--no-fresh').options.fresh).toBe(false);
    expect(parse('t', '--fresh', 'false').options.fresh).toBe(false);
    expect(parse('t', '--fresh=no').options.fresh).toBe(false);
    expect(parse('t', '--fresh', 'yes').options.fresh).toBe(true);
    // A word that is not a boolean is the next positional, not the flag's value.
    expect(parse('--fresh', 'sort').args.task).toBe('sort');
    expect(parse('t', '--no-color').options.color).toBe(false);
    expect(parse('t').options.color).toBeUndefined();
  });

  it('lists: several values, comma lists, flow lists', () => {
    expect(parse('t', '--items', 'a,b').options.items).toEqual(['a', 'b']);
    expect(parse('t', '--items', '[b, c]').options.items).toEqual(['b', 'c']);
    expect(parse('t', '--items=a,c').options.items).toEqual(['a', 'c']);
    expect(usageError(['t', '--items', 'a', 'd']).message).toBe('--items: "d" is not one of a, b, c');
  });

  it('negative numbers are values; -- ends the options', () => {
    expect(parse('t', '--limit', '-2').options.limit).toBe(-2);
    expect(usageError(['t', '--lr', '-1']).message).toBe('--lr: must be > 0, got -1');
    expect(parse('t', '--', '--fresh').args.more).toEqual(['--fresh']);
  });

  it('rejects an unknown option, naming the closest known one', () => {
    const e = usageError(['t', '--max-step', '3']);
    expect(e.message).toBe('unknown option --max-step (did you mean --max-steps?)');
    expect(e.unknown).toEqual({ name: 'max-step', suggestion: 'max-steps' });
    expect(usageError(['t', '--learning_rat', '1']).message).toBe('unknown option --learning_rat (did you mean --learning_rate?)');
    expect(usageError(['t', '--frobnicate']).message).toBe('unknown option --frobnicate');
    expect(usageError(['t', '-x']).message).toBe('unknown option -x');
    // --no- only negates booleans; hidden options are never suggested.
    expect(usageError(['t', '--no-lr']).message).toMatch(/^unknown option --no-lr/);
    expect(usageError(['t', '--secre']).message).toBe('unknown option --secre');
  });

  it('bad values name the option and the allowed values or range', () => {
    expect(usageError(['t', '--max-steps', 'ten']).message).toBe('--max-steps: expected an integer, got "ten"');
    expect(usageError(['t', '--max-steps', '2.5']).message).toBe('--max-steps: expected an integer, got "2.5"');
    expect(usageError(['t', '--max-steps', '0']).message).toBe('--max-steps: must be >= 1, got 0');
    expect(usageError(['t', '--max-steps', '0']).option).toBe('max-steps');
    expect(usageError(['t', '--lr', 'fast']).message).toBe('--lr: expected a number, got "fast"');
    expect(usageError(['t', '--format', 'csv']).message).toBe('--format: "csv" is not one of json, bin');
    expect(usageError(['t', '--fresh=maybe']).message).toBe('--fresh: expected true or false, got "maybe"');
    expect(usageError(['t', '--max-steps', 'null']).message).toBe('--max-steps: null is not allowed');
  });

  it('missing values, repeated options, positionals', () => {
    expect(usageError(['t', '--out']).message).toBe('--out needs a value');
    expect(usageError(['t', '--out', '--fresh']).message).toBe('--out needs a value');
    expect(parse('t', '--out=--odd').options.out).toBe('--odd');
    expect(usageError(['t', '--items']).message).toBe('--items needs at least one value');
    expect(usageError(['t', '--max-steps', '1', '--max_steps', '2']).message).toBe('--max-steps: given twice on the command line (--max-steps and --max_steps)');
    expect(usageError([]).message).toBe('missing <task>: the task');
    const two = parseCommand({ command: 'x', positionals: [{ name: 'a', doc: 'a' }], options: {} }, ['1']);
    expect(two.args.a).toBe('1');
    expect(() => parseCommand({ command: 'x', positionals: [{ name: 'a', doc: 'a' }], options: {} }, ['1', '2'])).toThrow('unexpected argument "2"');
    expect(() => parseCommand({ command: 'x', options: { n: { type: 'string', required: true, doc: 'the n' } } }, [])).toThrow('--n is required (the n)');
  });

  it('-h / --help anywhere before -- asks for help and checks nothing else', () => {
    expect(parse('--bogus', '-h').help).toBe(true);
    expect(parse('--help').help).toBe(true);
    expect(wantsHelp(['--', '--help'])).toBe(false);
    expect(() => parse('--', '--help')).not.toThrow();
  });
});

describe('scanArgs (the config system uses this level)', () => {
  it('returns raw values by canonical name, with how they were spelled', () => {
    const s = scanArgs(SPEC, ['--learning-rate', '3', '--items', 'a', 'b', '--fresh', 'pos', '--limit=null']);
    expect(Object.fromEntries(s.values)).toEqual({ lr: '3', items: ['a', 'b'], fresh: true, limit: 'null' });
    expect(s.spelled.get('lr')).toBe('--learning-rate');
    expect(s.positionals).toEqual(['pos']);
  });

  it('an option that takes a value only when one follows', () => {
    const spec: CommandSpec = { command: 'x', options: { w: { type: 'string', optionalValue: true, doc: '' }, z: { type: 'bool', doc: '' } } };
    expect(scanArgs(spec, ['--w', 'v']).values.get('w')).toBe('v');
    expect(scanArgs(spec, ['--w', '--z']).values.get('w')).toBe(true);
  });
});

describe('formatHelp', () => {
  it('usage, summary, arguments, options with defaults and aliases, groups, environment, notes', () => {
    const h = formatHelp(SPEC);
    expect(h.split('\n')[0]).toBe('usage: kindling demo <task> [<more>...] [options]');
    expect(h).toContain('\nA demo command.\n');
    expect(h).toMatch(/\narguments:\n {2}<task> +the task\n/);
    expect(h).toMatch(/\n {2}--max-steps N +optimizer steps \(default: 10\)\n/);
    expect(h).toMatch(/\n {2}--lr X +learning rate \(default: 0\.5; also --learning_rate\)\n/);
    expect(h).toMatch(/\n {2}--format json\|bin +output format \(default: json\)\n/);
    expect(h).toMatch(/\n {2}--out DIR +output directory \(default: runs\/<name>\)\n/);
    expect(h).toMatch(/\n {2}--items A,B,… +items \(default: a; items: a, b, c\)\n/);
    expect(h).toMatch(/\n {2}--limit N +a limit \(default: 3; or null\)\n/);
    expect(h).toMatch(/\n {2}-v, --verbose +say more\n/);
    expect(h).toMatch(/\n {2}--fresh +start over\n/);
    expect(h).toMatch(/\ndisplay options:\n {2}--color +colour\n/);
    expect(h).toMatch(/\n {2}-h, --help +show this help and exit\n/);
    expect(h).toMatch(/\nenvironment:\n {2}KINDLING_DEMO +a variable\n/);
    expect(h).toContain('\nSome notes.\n');
    expect(h).toContain('--max-steps = --max_steps');
    expect(h).not.toContain('secret');
    // Every line fits in 100 columns.
    for (const line of h.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
  });

  it('required options go into the usage line; subcommands get a commands table', () => {
    const h = formatHelp({ command: 'k s', options: { input: { type: 'string', required: true, metavar: 'FILE', doc: 'input' } } });
    expect(h.split('\n')[0]).toBe('usage: k s --input FILE [options]');
    expect(h).toContain('input (required)');
    const g = formatHelp({ command: 'k', subcommands: { list: 'list things', 'show <x>': 'show x' }, options: {} });
    expect(g.split('\n')[0]).toBe('usage: k <command> [options]');
    expect(g).toMatch(/\ncommands:\n {2}list +list things\n {2}show <x> +show x\n/);
  });
});

describe('closest', () => {
  it('treats dashes and underscores alike and refuses far matches', () => {
    expect(closest('max-step', ['max_steps', 'lr'])).toBe('max_steps');
    expect(closest('trian', ['train', 'start'])).toBe('train');
    expect(closest('zzzzzz', ['train', 'start'])).toBeNull();
  });
});
