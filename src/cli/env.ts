/** Environment variables the commands that open a WebGPU device read (engine/device.ts, main.ts); listed in their --help. */
export const DEVICE_ENV: Readonly<Record<string, string>> = {
  KINDLING_ADAPTER: 'adapter name or substring to use',
  KINDLING_BACKEND: 'WebGPU backend (vulkan, metal, d3d12, ...)',
  KINDLING_SOFTWARE: '1: force the CPU (software) adapter',
  KINDLING_DAWN_TOGGLES: 'Dawn adapter toggles to turn on, comma-separated (e.g. vulkan_enable_f16_on_nvidia: shader-f16 on NVIDIA)',
  KINDLING_DEBUG: '1: print the stack trace after the one-line message of an error',
};
