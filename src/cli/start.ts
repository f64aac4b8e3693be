/**
 * `kindling start` (what `npm start` runs after bootstrapping): prints the adapter, runs the engine
 * self-check, then the main demo job.
 */
import { Engine } from '../../engine/engine.ts';
import { runComputeCheck } from '../../engine/selfcheck.ts';

export async function runStartCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log('usage: kindling start\n  Prints the adapter, checks the engine on it, then runs the main demo job.');
    return 0;
  }
  const engine = await Engine.create();
  try {
    console.log(`kindling on ${engine.device.describe()}`);
    const ok = await runComputeCheck(engine.device);
    console.log(`engine self-check: ${ok ? 'ok' : 'FAILED'}`);
    if (!ok) return 1;
    return 0;
  } finally {
    engine.destroy();
  }
}
