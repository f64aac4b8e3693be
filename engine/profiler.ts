/**
 * Profiler: per-dispatch device times from timestamp queries.
 *
 *   engine.profiler.start();
 *   ...record and flush one or more steps...
 *   const p = await engine.profiler.stop();
 *   console.log(p.table());                 // per-kernel: calls, ms, share, GFLOP/s, GB/s
 *   console.log(engine.profiler.describePlan()); // the kernel plan those kernels were chosen by
 *   writeFileSync('trace.json', p.chromeTrace()); // open in https://ui.perfetto.dev
 *
 * While active, every dispatch runs in its own compute pass with beginning/end timestamps (the only
 * timestamps core WebGPU allows), which adds a little overhead per dispatch; timings are device
 * times, not wall-clock.
 */
import type { DispatchCost, Engine } from './engine.ts';
import { describePlan } from './plan.ts';
import { gpuWait } from './wait.ts';

export interface DispatchTiming {
  kernel: string;
  /** Start, relative to the first dispatch, in ms. */
  startMs: number;
  ms: number;
  flops: number;
  bytes: number;
}

export interface KernelRow {
  kernel: string;
  calls: number;
  ms: number;
  share: number;
  gflops: number;
  gbps: number;
}

const CAPACITY = 2048; // dispatches per flush (a query set holds at most 4096 timestamps)

export class ProfileResult {
  constructor(readonly dispatches: DispatchTiming[]) {}

  get totalMs(): number {
    return this.dispatches.reduce((a, d) => a + d.ms, 0);
  }

  rows(): KernelRow[] {
    const by = new Map<string, KernelRow & { f: number; b: number }>();
    for (const d of this.dispatches) {
      let r = by.get(d.kernel);
      if (!r) by.set(d.kernel, (r = { kernel: d.kernel, calls: 0, ms: 0, share: 0, gflops: 0, gbps: 0, f: 0, b: 0 }));
      r.calls++;
      r.ms += d.ms;
      r.f += d.flops;
      r.b += d.bytes;
    }
    const total = this.totalMs || 1;
    return [...by.values()]
      .map(({ f, b, ...r }) => ({ ...r, share: r.ms / total, gflops: r.ms > 0 ? f / (r.ms * 1e6) : 0, gbps: r.ms > 0 ? b / (r.ms * 1e6) : 0 }))
      .sort((a, b) => b.ms - a.ms);
  }

  /** A fixed-width text table, heaviest kernels first. */
  table(): string {
    const rows = this.rows();
    const w = Math.max(6, ...rows.map((r) => r.kernel.length));
    const lines = [`${'kernel'.padEnd(w)}  calls   total ms   share   GFLOP/s    GB/s`];
    for (const r of rows)
      lines.push(
        `${r.kernel.padEnd(w)}  ${String(r.calls).padStart(5)}  ${r.ms.toFixed(3).padStart(9)}  ${(r.share * 100).toFixed(1).padStart(5)}%  ${
          r.gflops ? r.gflops.toFixed(2).padStart(8) : '       -'
        }  ${r.gbps ? r.gbps.toFixed(2).padStart(6) : '     -'}`,
      );
    lines.push(`${'total'.padEnd(w)}  ${String(this.dispatches.length).padStart(5)}  ${this.totalMs.toFixed(3).padStart(9)}`);
    return lines.join('\n');
  }

  /** Chrome trace-event JSON (one complete event per dispatch), for Perfetto or chrome://tracing. */
  chromeTrace(): string {
    const events = this.dispatches.map((d) => ({
      name: d.kernel,
      cat: 'kernel',
      ph: 'X',
      ts: d.startMs * 1000,
      dur: d.ms * 1000,
      pid: 1,
      tid: 1,
      args: { flops: d.flops, bytes: d.bytes },
    }));
    return JSON.stringify({ traceEvents: events, displayTimeUnit: 'ms' });
  }
}

export class Profiler {
  private querySet: GPUQuerySet | null = null;
  private resolveBuf: GPUBuffer | null = null;
  private on = false;
  private inFlight: { names: string[]; costs: DispatchCost[] } = { names: [], costs: [] };
  private pending: Promise<void>[] = [];
  private timings: { kernel: string; t0: bigint; t1: bigint; cost: DispatchCost }[] = [];

  constructor(private readonly engine: Engine) {}

  /**
   * The engine's kernel plan as text (engine/plan.ts): which variants the ops choose from, so a
   * profile's kernel names can be read against it. Needs no profiling session.
   */
  describePlan(): string {
    return describePlan(this.engine.plan);
  }

  /** Whether timestamp queries are available on this device. */
  get supported(): boolean {
    return this.engine.device.hasFeature('timestamp-query');
  }

  get active(): boolean {
    return this.on;
  }

  start(): void {
    if (!this.supported) throw new Error('profiling needs the timestamp-query feature, which this adapter lacks');
    this.engine.flush();
    if (!this.querySet) {
      this.querySet = this.engine.gpu.createQuerySet({ type: 'timestamp', count: CAPACITY * 2, label: 'profiler' });
      this.resolveBuf = this.engine.gpu.createBuffer({ size: CAPACITY * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'profiler resolve' });
    }
    this.timings = [];
    this.on = true;
  }

  async stop(): Promise<ProfileResult> {
    this.engine.flush();
    this.on = false;
    await Promise.all(this.pending);
    this.pending = [];
    const timings = this.timings;
    this.timings = [];
    if (timings.length === 0) return new ProfileResult([]);
    const t0 = timings.reduce((m, t) => (t.t0 < m ? t.t0 : m), timings[0]!.t0);
    return new ProfileResult(
      timings.map((t) => ({
        kernel: t.kernel,
        startMs: Number(t.t0 - t0) / 1e6,
        ms: Math.max(0, Number(t.t1 - t.t0) / 1e6),
        flops: t.cost.flops ?? 0,
        bytes: t.cost.bytes ?? 0,
      })),
    );
  }

  /** Called by the engine for each dispatch while active. */
  timestampWrites(kernel: string, cost: DispatchCost): GPUComputePassTimestampWrites {
    if (this.inFlight.names.length >= CAPACITY) this.engine.flush();
    const i = this.inFlight.names.length;
    this.inFlight.names.push(kernel);
    this.inFlight.costs.push(cost);
    return { querySet: this.querySet!, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Called for dispatches while inactive (kept cheap: nothing recorded). */
  note(_kernel: string, _cost: DispatchCost): void {}

  beforeSubmit(enc: GPUCommandEncoder): void {
    const n = this.inFlight.names.length;
    if (!this.on || n === 0) return;
    enc.resolveQuerySet(this.querySet!, 0, 2 * n, this.resolveBuf!, 0);
    const staging = this.engine.gpu.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'profiler readback' });
    enc.copyBufferToBuffer(this.resolveBuf!, 0, staging, 0, 16 * n);
    const { names, costs } = this.inFlight;
    this.inFlight = { names: [], costs: [] };
    this.pending.push(
      (async () => {
        // Map after the submit that carries the copy.
        await Promise.resolve();
        await gpuWait(staging.mapAsync(GPUMapMode.READ));
        const ts = new BigUint64Array(staging.getMappedRange().slice(0));
        staging.unmap();
        staging.destroy();
        for (let i = 0; i < names.length; i++) this.timings.push({ kernel: names[i]!, t0: ts[2 * i]!, t1: ts[2 * i + 1]!, cost: costs[i]! });
      })(),
    );
  }

  afterSubmit(): void {}
}
