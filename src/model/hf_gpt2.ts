/**
 * Reading a Hugging Face GPT-2 directory as published on the Hub: `config.json` plus `model.safetensors`
 * (or the shards of `model.safetensors.index.json`).
 *
 * The config goes through `fromHfConfig` (src/model/config.ts) and the tensors are checked against
 * `paramShapes` (src/model/hf_names.ts), the one GPT-2 parameter list of the code base.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, HF_CONFIG_FILE } from '../io/checkpoint.ts';
import { readSafetensors } from '../io/safetensors.ts';
import { fromHfConfig, ModelConfigError, type GPTConfig, type HfGpt2Config } from './config.ts';
import { normaliseHfName, paramNames, paramShapes } from './hf_names.ts';

export interface HfGpt2 {
  config: GPTConfig;
  /** The config.json object as read. */
  hfConfig: Record<string, unknown>;
  /** Parameters by normalised name (`transformer.` prefix; no buffers; lm_head only when untied). */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

/**
 * Reads a Hugging Face GPT-2 checkpoint directory: `config.json` plus `model.safetensors` (or the shards
 * of `model.safetensors.index.json`). Names are accepted with or without the `transformer.` prefix;
 * `attn.bias`/`attn.masked_bias` buffers are skipped; a tied model's `lm_head.weight` (if present) is
 * dropped; F16/BF16/F64 weights become float32. Every parameter must be present with the shape the
 * config implies (errors name the tensor). Errors are `CheckpointError`s naming the file.
 */
export function loadHfGpt2(dir: string): HfGpt2 {
  const cfgPath = path.join(dir, HF_CONFIG_FILE);
  if (!fs.existsSync(dir)) throw new CheckpointError(`${dir} does not exist`);
  if (!fs.existsSync(cfgPath)) throw new CheckpointError(`${dir}: no ${HF_CONFIG_FILE} (expected a Hugging Face model directory)`);
  let hfConfig: Record<string, unknown>;
  try {
    hfConfig = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${cfgPath}: not valid JSON (${(e as Error).message})`);
  }
  let config: GPTConfig;
  try {
    config = fromHfConfig(hfConfig as HfGpt2Config);
  } catch (e) {
    if (e instanceof ModelConfigError) throw new CheckpointError(`${cfgPath}: ${e.message}`);
    throw e;
  }

  let files: string[];
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(single)) files = [single];
  else if (fs.existsSync(index)) {
    const idx = JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map?: Record<string, string> };
    if (!idx.weight_map) throw new CheckpointError(`${index}: no weight_map`);
    files = [...new Set(Object.values(idx.weight_map))].sort().map((f) => path.join(dir, f));
  } else if (fs.existsSync(path.join(dir, 'pytorch_model.bin'))) {
    throw new CheckpointError(
      `${dir}: only pytorch_model.bin (a pickle) is present; convert it to safetensors first, e.g. ` +
        `python -c "import torch; from safetensors.torch import save_file; ` +
        `sd = torch.load('pytorch_model.bin'); save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors', metadata={'format': 'pt'})"`,
    );
  } else {
    throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  }

  const shapes = paramShapes(config);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const file of files) {
    const { tensors: raw } = readSafetensors(file);
    for (const [rawName, t] of raw) {
      const name = normaliseHfName(rawName);
      if (name === null) continue; // causal-mask buffers
      if (name === 'lm_head.weight' && config.tied) continue; // the tied head is wte
      const want = shapes.get(name);
      if (!want) throw new CheckpointError(`${file}: unexpected tensor "${rawName}" for a ${config.nLayer}-layer GPT-2`);
      if (want.length !== t.shape.length || want.some((x, i) => x !== t.shape[i])) {
        throw new CheckpointError(`${file}: tensor "${rawName}" has shape [${t.shape.join(', ')}], the config implies [${want.join(', ')}]`);
      }
      if (!(t.data instanceof Float32Array)) throw new CheckpointError(`${file}: tensor "${rawName}" is not floating point (${t.dtype})`);
      if (tensors.has(name)) throw new CheckpointError(`${file}: tensor "${name}" appears twice`);
      tensors.set(name, { shape: t.shape, data: t.data });
    }
  }
  const missing = paramNames(config).filter((n) => !tensors.has(n));
  if (missing.length) {
    throw new CheckpointError(`${dir}: missing ${missing.length} parameter(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  }
  return { config, hfConfig, tensors };
}
