/**
 * Live progress of an experiment: one line per running run (arm, seed, stage, step/total, last
 * accuracy, ETA). On a TTY the block of lines is redrawn in place (log lines scroll above it);
 * otherwise a run's line is printed when its stage changes, when it finishes, and at most every
 * `intervalMs` (30 s) in between, so CI logs stay readable. A loss or accuracy is shown only once
 * one has been read (never "NaN").
 */
import { fmtDuration } from '../util/progress.ts';

export interface RunStatus {
  arm: string;
  seed: number;
  stage: 'stage 1' | 'stage 2' | 'waiting';
  step: number;
  total: number;
  /** Last evaluation accuracy (fraction), if any. */
  accuracy?: number | null;
  /** Last training loss, if any. */
  loss?: number | null;
  /** Extra text, e.g. "waiting for stage 1 (pid 123)". */
  note?: string;
}

export interface BoardSink {
  update(id: string, s: RunStatus): void;
  done(id: string, line: string): void;
  log(line: string): void;
}

interface Entry {
  status: RunStatus;
  /** Time and step the current stage's rate is measured from. */
  t0: number;
  step0: number;
  lastPrint: number;
}

export class ProgressBoard implements BoardSink {
  private readonly entries = new Map<string, Entry>();
  private drawn = 0;
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly stream: { write(s: string): unknown; isTTY?: boolean } = process.stderr,
    private readonly intervalMs = 30_000,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(id: string, s: RunStatus): void {
    const now = performance.now();
    const prev = this.entries.get(id);
    const newStage = !prev || prev.status.stage !== s.stage || s.step < prev.status.step;
    const e: Entry = newStage ? { status: s, t0: now, step0: s.step, lastPrint: prev?.lastPrint ?? -Infinity } : { ...prev, status: s };
    this.entries.set(id, e);
    if (this.tty) {
      if (newStage || now - this.lastDraw > 250) this.redraw();
    } else if (newStage || now - e.lastPrint >= this.intervalMs) {
      e.lastPrint = now;
      this.stream.write(`${this.render(e)}\n`);
    }
  }

  done(id: string, line: string): void {
    this.entries.delete(id);
    this.log(line);
  }

  log(line: string): void {
    if (this.tty) {
      this.clear();
      this.stream.write(`${line}\n`);
      this.redraw();
    } else this.stream.write(`${line}\n`);
  }

  /** Removes the live block (before the final output). */
  close(): void {
    if (this.tty) this.clear();
    this.entries.clear();
  }

  private clear(): void {
    if (this.drawn > 0) this.stream.write(`\x1b[${this.drawn}A\r\x1b[J`);
    this.drawn = 0;
  }

  private redraw(): void {
    this.clear();
    const lines = [...this.entries.values()].map((e) => this.render(e));
    for (const l of lines) this.stream.write(`${l}\x1b[K\n`);
    this.drawn = lines.length;
    this.lastDraw = performance.now();
  }

  render(e: Entry): string {
    const s = e.status;
    const head = `${s.arm} seed ${s.seed}`;
    if (s.stage === 'waiting') return `${head}  ${s.note ?? 'waiting'}`;
    const pct = s.total > 0 ? ` ${((100 * s.step) / s.total).toFixed(0)}%` : '';
    const parts = [`${head}  ${s.stage}  ${s.step}/${s.total}${pct}`];
    if (s.accuracy !== undefined && s.accuracy !== null && Number.isFinite(s.accuracy)) parts.push(`acc ${(100 * s.accuracy).toFixed(1)}%`);
    if (s.loss !== undefined && s.loss !== null && Number.isFinite(s.loss)) parts.push(`loss ${s.loss.toFixed(4)}`);
    const dt = (performance.now() - e.t0) / 1000;
    const rate = s.step > e.step0 && dt > 0 ? (s.step - e.step0) / dt : 0;
    parts.push(`ETA ${rate > 0 ? fmtDuration((s.total - s.step) / rate) : '?'}`);
    if (s.note) parts.push(s.note);
    return parts.join('  ');
  }
}

/** A worker's board: forwards everything to the parent process over IPC. */
export class IpcBoard implements BoardSink {
  constructor(private readonly send: (msg: unknown) => void) {}
  update(id: string, s: RunStatus): void {
    this.send({ kind: 'update', id, s });
  }
  done(id: string, line: string): void {
    this.send({ kind: 'done', id, line });
  }
  log(line: string): void {
    this.send({ kind: 'log', line });
  }
}

/** Feeds a message from an IpcBoard into a board. */
export function relay(board: BoardSink, msg: unknown): void {
  const m = msg as { kind: string; id: string; s: RunStatus; line: string };
  if (m.kind === 'update') board.update(m.id, m.s);
  else if (m.kind === 'done') board.done(m.id, m.line);
  else if (m.kind === 'log') board.log(m.line);
}
