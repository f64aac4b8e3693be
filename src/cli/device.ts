/** `kindling device`: the adapter in one line, then its features, the limits we got and the kernel plan. */
import { Device, fmtBytes, probePrecision, type PrecisionOffer, requestedToggles } from '../../engine/device.ts';
import { formatHelp, parseCommand, type CommandSpec } from '../util/args.ts';
import { DEVICE_ENV } from './env.ts';

export const DEVICE_SPEC = {
  command: 'kindling device',
  summary: 'Prints the WebGPU adapter kindling would use, its features and limits.',
  options: {
    json: { type: 'bool', default: false, doc: 'print adapter, features and limits as one JSON object' },
  },
  env: DEVICE_ENV,
} as const satisfies CommandSpec;
import { describePlan } from '../../engine/plan.ts';

export async function runDeviceCommand(argv: string[]): Promise<number> {
  const args = parseCommand(DEVICE_SPEC, argv);
  if (args.help) {
    process.stdout.write(formatHelp(DEVICE_SPEC));
    return 0;
  }
  const dev = await Device.create();
  try {
    if (args.options.json) {
      const precision = await probePrecision();
      console.log(JSON.stringify({ adapter: dev.info, features: [...dev.features], limits: dev.limits, plan: dev.plan, precision, precisionF16: dev.features.has('shader-f16') }, null, 2));
      return 0;
    }
    console.log(`adapter:  ${dev.describe()}`);
    console.log(`features: ${[...dev.features].sort().join(', ') || '(none)'}`);
    if (dev.info.subgroupMinSize) console.log(`subgroups: ${dev.info.subgroupMinSize}..${dev.info.subgroupMaxSize}`);
    console.log('limits:');
    for (const [k, v] of Object.entries(dev.limits)) console.log(`  ${k.padEnd(36)} ${/Size$/.test(k) && v >= 65536 ? `${fmtBytes(v)} (${v})` : v}`);
    console.log(describePlan(dev.plan));
    const offers = await probePrecision();
    console.log(formatPrecision(offers));
    console.log(formatF16(dev, offers));
    return 0;
  } finally {
    dev.destroy();
  }
}

/** The lower-precision features the adapter offers, per set of Dawn adapter toggles (probePrecision). */
function formatPrecision(offers: PrecisionOffer[]): string {
  const own = requestedToggles();
  const lines = [`lower precision (Dawn adapter toggles; this device has ${own.length ? `KINDLING_DAWN_TOGGLES=${own.join(',')}` : 'none: KINDLING_DAWN_TOGGLES turns them on'}):`];
  for (const o of offers) {
    const what = [`shader-f16 ${o.shaderF16 ? 'yes' : 'no'}`, `subgroup matrices ${o.subgroupMatrix ? `yes${o.subgroupMatrixConfigs.length ? ` (${o.subgroupMatrixConfigs.join(', ')})` : ''}` : 'no'}`];
    lines.push(`  ${(o.toggles.join(' + ') || 'no toggles').padEnd(50)} ${what.join(', ')}`);
  }
  return lines.join('\n');
}

/** Whether training with `precision: f16` can run on this device, and if not, what would unlock it. */
function formatF16(dev: Device, offers: PrecisionOffer[]): string {
  if (dev.features.has('shader-f16')) return 'precision f16 (training key `precision`): available on this device';
  const unlock = offers.find((o) => o.shaderF16 && o.toggles.length);
  return `precision f16 (training key \`precision\`): not available (no shader-f16${unlock ? `; KINDLING_DAWN_TOGGLES=${unlock.toggles.join(',')} offers it` : ''}); bf16 is`;
}
