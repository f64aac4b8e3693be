// `kindling data` (src/cli/data.ts) driven in-process with captured output streams.
import { runDataCommand } from '../../src/cli/data.ts';

export interface DataRun {
  code: number;
  /** Standard output as UTF-8 text. */
  out: string;
  err: string;
  /** Standard output as bytes (binary exports). */
  bytes: Buffer;
}

/** Run `kindling data <argv>`; `isTTY` is what the command sees of its standard output. */
export async function runData(argv: string[], isTTY = false): Promise<DataRun> {
  const chunks: Buffer[] = [];
  let err = '';
  const code = await runDataCommand(argv, {
    stdout: { write: (c: string | Uint8Array) => void chunks.push(Buffer.from(c)), isTTY },
    stderr: { write: (c: string) => void (err += c) },
  });
  const bytes = Buffer.concat(chunks);
  return { code, out: bytes.toString('utf8'), err, bytes };
}
