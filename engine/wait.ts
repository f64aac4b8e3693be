/**
 * Waiting for the device without stealing a core from it.
 *
 * Dawn's Node bindings settle their promises (mapAsync, onSubmittedWorkDone, popErrorScope,
 * createComputePipelineAsync) by polling the instance from a `setImmediate` loop on the main
 * thread: while anything is pending, the main thread spins at 100% CPU. On a software adapter the
 * "GPU" is lavapipe's worker threads on the same cores, so the spinning takes a core away from the
 * very work being waited for (what the throttle saves is measured in docs/performance.md).
 *
 * Dawn looks `setImmediate` up on the global object at every tick. `gpuWait(p)` awaits `p` with
 * that global routed through a throttle: the first few ticks of a wait run immediately (a short
 * wait, e.g. a small readback, stays short), later ones are delayed by POLL_MS with setTimeout, so
 * a long wait polls ~1000 times a second instead of spinning. Other users of `setImmediate` during
 * the wait are delayed the same way (their callbacks still run, in order, and `clearImmediate`
 * still cancels them). Waits nest and overlap (a reference count); the original functions are
 * restored when the last one ends.
 *
 * `KINDLING_SPIN_WAIT=1` turns the throttle off (Dawn's own behaviour), `=0` forces it on. Unset,
 * it is on until an engine is created on a hardware adapter (`spinOnHardware`): a real GPU does
 * not share the CPU's cores, and the throttle's 1 ms polls would only add latency to each wait.
 */

/** Ticks of a wait that run immediately before the throttle starts. */
const EAGER_TICKS = 32;
/** Delay between polls once throttled (Node's timer granularity is 1 ms). */
const POLL_MS = 1;

type SetImmediate = typeof globalThis.setImmediate;
type ClearImmediate = typeof globalThis.clearImmediate;

let active = 0;
let ticks = 0;
let original: SetImmediate | null = null;
let originalClear: ClearImmediate | null = null;
/** Timers the throttle handed out in place of immediates (so clearImmediate can cancel them). */
const deferred = new WeakSet<object>();

function throttled(cb: (...args: unknown[]) => void, ...args: unknown[]): unknown {
  ticks++;
  if (ticks <= EAGER_TICKS) return (original as (f: (...a: unknown[]) => void, ...a: unknown[]) => unknown)(cb, ...args);
  const t = setTimeout(cb, POLL_MS, ...args);
  deferred.add(t);
  return t;
}

function clearThrottled(h: unknown): void {
  if (h && typeof h === 'object' && deferred.has(h)) clearTimeout(h as NodeJS.Timeout);
  else (originalClear as (x: unknown) => void)(h);
}

function enter(): void {
  if (active++ === 0) {
    ticks = 0;
    original = globalThis.setImmediate;
    originalClear = globalThis.clearImmediate;
    globalThis.setImmediate = throttled as unknown as SetImmediate;
    globalThis.clearImmediate = clearThrottled as unknown as ClearImmediate;
  }
}

function leave(): void {
  if (--active === 0 && original) {
    globalThis.setImmediate = original;
    globalThis.clearImmediate = originalClear!;
    original = null;
    originalClear = null;
  }
}

let hardwareAdapter = false;

/** Called by Engine.create on a hardware adapter: waits spin from then on unless KINDLING_SPIN_WAIT=0. */
export function spinOnHardware(): void {
  hardwareAdapter = true;
}

/** Whether waits are throttled or left to Dawn's spinning poll (see the module comment). */
export function waitsThrottled(): boolean {
  const env = process.env.KINDLING_SPIN_WAIT;
  if (env === '1') return false;
  if (env === '0') return true;
  return !hardwareAdapter;
}

/** Await a promise that Dawn settles, polling gently instead of spinning (see the module comment). */
export async function gpuWait<T>(p: Promise<T>): Promise<T> {
  if (!waitsThrottled()) return p;
  enter();
  try {
    return await p;
  } finally {
    leave();
  }
}
