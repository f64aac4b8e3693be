// Node wrapper around the PyTorch peer (benchmarks/peers/torch_gpt_step.py): runs it as a child
// process with Debian's /usr/bin/python3 (or $KINDLING_TORCH_PYTHON) and parses its one JSON line.
// On the CPU by default; KINDLING_TORCH_DEVICE=cuda (or the `device` option) runs it on a CUDA GPU.
//
//   node --import tsx benchmarks/peers/torch_gpt.ts [a|b|g|needle|tiny] [steps] [threads]

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let defaultPython: string | null = null;

/**
 * The interpreter the peer runs with: $KINDLING_TORCH_PYTHON; else /usr/bin/python3 when it imports
 * torch (Debian's python3-torch); else `python3` on the PATH when that one does (a virtual
 * environment, e.g. a CUDA machine's image); else /usr/bin/python3, so the reason names it.
 */
export function defaultTorchPython(): string {
  if (defaultPython) return defaultPython;
  if (process.env.KINDLING_TORCH_PYTHON) return (defaultPython = process.env.KINDLING_TORCH_PYTHON);
  defaultPython = torchAvailableSync('/usr/bin/python3') ? '/usr/bin/python3' : torchAvailableSync('python3') ? 'python3' : '/usr/bin/python3';
  return defaultPython;
}

export const TORCH_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_gpt_step.py');

export interface TorchGptOptions {
  /** Untimed steps first (default 2). */
  warmup?: number;
  /** Timed steps (default 10). */
  steps?: number;
  /** torch.set_num_threads; default: torch's own default. */
  threads?: number;
  /** Learning rate (default 5e-4). */
  lr?: number;
  /** A JSON state written from the TF.js peer's exportState(): weights and batch (shape is ignored). */
  statePath?: string;
  /** Python interpreter (default: `defaultTorchPython()`). */
  python?: string;
  /** Extra environment for the child (e.g. LD_LIBRARY_PATH to an OpenBLAS build, OMP_NUM_THREADS). */
  env?: Record<string, string>;
  /** Kill the child after this long (default 30 min). */
  timeoutMs?: number;
  /** 'cpu' or 'cuda' (default: env KINDLING_TORCH_DEVICE, else cpu; the step benchmark asks for cuda on GPU adapters). */
  device?: string;
  /** On CUDA, let matmuls use TF32 (default: strict float32, like the engine). */
  tf32?: boolean;
}

export interface TorchGptResult {
  msPerStep: number;
  /** CPU time of the python process per timed step (all threads). */
  cpuMsPerStep: number;
  /** Losses of the warm-up steps then the timed steps. */
  losses: number[];
  threads: number;
  torch: string;
  /** The BLAS library torch's gemm loaded (Debian's torch uses whatever libblas.so.3 resolves to). */
  blas: string;
  params: number;
  /** 'cpu' or the CUDA device's name. */
  device: string;
  tf32: boolean;
}

export type TorchGptOutcome = TorchGptResult | { unavailable: string };

let availability: Promise<string | null> | null = null;

/** null when /usr/bin/python3 can import torch; otherwise the reason it cannot. */
export function torchUnavailableReason(python = defaultTorchPython()): Promise<string | null> {
  if (python !== defaultTorchPython()) return checkTorch(python);
  return (availability ??= checkTorch(python));
}

async function checkTorch(python: string): Promise<string | null> {
  if (python.includes('/') && !existsSync(python)) return `${python} not found`;
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `${python} failed to run: ${r.error.message}`;
  if (r.status !== 0) {
    const last = (r.stderr || r.stdout).trim().split('\n').at(-1) ?? '';
    return `${python} cannot import torch (${last || `exit ${r.status}`}); on Debian: apt-get install python3-torch`;
  }
  return null;
}

/** Synchronous check for test files (`it.skipIf(!torchAvailableSync())`). */
export function torchAvailableSync(python = defaultTorchPython()): boolean {
  if (python.includes('/') && !existsSync(python)) return false;
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
  return !r.error && r.status === 0;
}

/**
 * A directory holding an OpenBLAS libblas.so.3 for the child's LD_LIBRARY_PATH (Debian's torch calls
 * whatever libblas.so.3 resolves to): $KINDLING_TORCH_BLAS_DIR, else Debian's openblas-openmp or
 * openblas-pthread directory when installed; null when none (the system's libblas.so.3 is used).
 */
export function openblasDir(): string | null {
  const cands = [process.env.KINDLING_TORCH_BLAS_DIR, '/usr/lib/x86_64-linux-gnu/openblas-openmp', '/usr/lib/x86_64-linux-gnu/openblas-pthread'];
  for (const d of cands) if (d && existsSync(join(d, 'libblas.so.3'))) return d;
  return null;
}

/** Runs the PyTorch peer for one shape; `unavailable` says why when python or torch is missing. */
export async function runTorchGptStep(shape: 'a' | 'b' | 'g' | 'needle' | 'tiny', opts: TorchGptOptions = {}): Promise<TorchGptOutcome> {
  const python = opts.python ?? defaultTorchPython();
  const reason = await torchUnavailableReason(python);
  if (reason) return { unavailable: reason };
  const args = [
    TORCH_SCRIPT,
    shape,
    String(opts.warmup ?? 2),
    String(opts.steps ?? 10),
    opts.threads ? String(opts.threads) : 'default',
  ];
  if (opts.lr !== undefined) args.push('--lr', String(opts.lr));
  if (opts.statePath) args.push('--state', opts.statePath);
  const device = opts.device ?? process.env.KINDLING_TORCH_DEVICE ?? 'cpu';
  if (device !== 'cpu') args.push('--device', device);
  if (opts.tf32) args.push('--tf32');
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(python, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30 * 60_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, stdout: out, stderr: err });
      });
    },
  );
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (code !== 0 || !line) {
    throw new Error(`torch peer failed (exit ${code}): ${(stderr || stdout).trim().split('\n').slice(-5).join('\n')}`);
  }
  const j = JSON.parse(line) as {
    ms_per_step: number;
    cpu_ms_per_step: number;
    losses: number[];
    threads: number;
    torch: string;
    blas: string;
    params: number;
    device?: string;
    tf32?: boolean;
  };
  return {
    msPerStep: j.ms_per_step,
    cpuMsPerStep: j.cpu_ms_per_step,
    losses: j.losses,
    threads: j.threads,
    torch: j.torch,
    blas: j.blas,
    params: j.params,
    device: j.device ?? 'cpu',
    tf32: !!j.tf32,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const shape = (process.argv[2] ?? 'a') as 'a' | 'b' | 'g' | 'needle' | 'tiny';
  const steps = Number(process.argv[3] ?? 10);
  const threads = process.argv[4] ? Number(process.argv[4]) : undefined;
  const r = await runTorchGptStep(shape, { steps, threads });
  if ('unavailable' in r) {
    console.log(`torch peer unavailable: ${r.unavailable}`);
  } else {
    console.log(
      `torch ${r.torch} ${r.device}${r.tf32 ? ' (TF32)' : ''} gpt step, shape ${shape}: ${r.msPerStep.toFixed(1)} ms/step wall, ` +
        `${r.cpuMsPerStep.toFixed(1)} ms/step CPU, ${r.threads} thread(s), BLAS ${r.blas}`,
    );
  }
}
