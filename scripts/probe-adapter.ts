// Used by scripts/setup.sh: exits 0 and prints the adapter if Node gets a working WebGPU device.
// (No process.exit(): exiting while Dawn's threads run can hang; destroy the device and return.)
import { Device } from '../engine/device.ts';
import { runComputeCheck } from '../engine/selfcheck.ts';

try {
  const dev = await Device.create();
  const ok = await runComputeCheck(dev);
  console.log(`WebGPU adapter: ${dev.describe()}${ok ? '' : ' (compute check FAILED)'}`);
  dev.destroy();
  process.exitCode = ok ? 0 : 1;
} catch (e) {
  console.error(String((e as Error).message));
  process.exitCode = 1;
}
