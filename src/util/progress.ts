/**
 * A progress bar with rate and ETA for long work. On a TTY it redraws one line; otherwise it prints
 * a plain line at most every `minIntervalMs` (so CI logs stay short).
 */
export interface ProgressOptions {
  label: string;
  total: number;
  unit?: string;
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  minIntervalMs?: number;
}

export class Progress {
  private readonly t0 = performance.now();
  private last = 0;
  private done = 0;
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly tty: boolean;

  constructor(private readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.tty = Boolean((this.stream as { isTTY?: boolean }).isTTY);
  }

  /** Advance to `done` units, with an optional status text (e.g. "loss 2.31"). */
  update(done: number, status = ''): void {
    this.done = done;
    const now = performance.now();
    const interval = this.o.minIntervalMs ?? (this.tty ? 100 : 10_000);
    if (now - this.last < interval && done < this.o.total) return;
    this.last = now;
    const line = this.render(status);
    this.stream.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }

  /** The last line; `done` (default: the last update's) sets the units done first. */
  finish(status = '', done?: number): void {
    if (done !== undefined) this.done = done;
    const line = this.render(status);
    this.stream.write(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`);
  }

  render(status: string): string {
    const { total, label } = this.o;
    const unit = this.o.unit ?? 'it';
    const elapsed = (performance.now() - this.t0) / 1000;
    const frac = total > 0 ? Math.min(1, this.done / total) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (total - this.done) / rate : NaN;
    return `${label} [${bar}] ${this.done}/${total} ${unit} ${(frac * 100).toFixed(0)}% | ${rate.toFixed(2)} ${unit}/s | elapsed ${fmtDuration(elapsed)} | ETA ${fmtDuration(eta)}${status ? ` | ${status}` : ''}`;
  }
}

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
