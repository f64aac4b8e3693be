// Captures what a command prints in-process: process.stdout/stderr writes and console.log/error.
import { afterEach, beforeEach, vi } from 'vitest';

export interface Captured {
  out: string;
  err: string;
}

/** Registers hooks that capture output for each test of the enclosing suite; read `.out` / `.err`. */
export function captureOutput(): Captured {
  const c: Captured = { out: '', err: '' };
  beforeEach(() => {
    c.out = '';
    c.err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((c.out += String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((c.err += String(s)), true));
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (c.out += a.join(' ') + '\n'));
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (c.err += a.join(' ') + '\n'));
  });
  afterEach(() => vi.restoreAllMocks());
  return c;
}
