/** A tiny end-to-end compute check: upload, one kernel, read back, compare. */
import type { Device } from './device.ts';
import { Engine } from './engine.ts';
import { axpby } from './ops/elementwise.ts';

export async function runComputeCheck(device?: Device): Promise<boolean> {
  const engine = device ? Engine.fromDevice(device) : await Engine.create();
  const n = 1003;
  const a = Float32Array.from({ length: n }, (_, i) => i * 0.5);
  const b = Float32Array.from({ length: n }, (_, i) => 3 - i);
  const out = await axpby(engine.tensor(a), engine.tensor(b), 2, -1).read();
  let ok = out.length === n;
  for (let i = 0; i < n && ok; i++) ok = out[i] === 2 * a[i]! - b[i]!;
  if (!device) engine.destroy();
  return ok;
}
