/** Command-line options shared by the benchmarks. */

/** The value after `--name` (undefined when absent); throws when the value is missing. */
export function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}
