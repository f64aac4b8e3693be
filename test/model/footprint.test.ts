// trainingFootprint and fitProblem (src/model/footprint.ts) against numbers computed by hand.
import { describe, expect, it } from 'vitest';
import { makeConfig } from '../../src/model/config.ts';
import { describeRun, fitProblem, formatBytes, trainingFootprint } from '../../src/model/footprint.ts';

// The sort default: 2 layers, 4 heads, d 16, vocab 23, context 41, tied; batch 64 of 41 tokens.
const small = makeConfig({ size: '2_4_16', vocabSize: 23, nPositions: 41, tied: true, dropout: 0 });
const LAVAPIPE = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 2 ** 32 - 1 };
const GiB = 2 ** 30;

describe('trainingFootprint', () => {
  it('2_4_16, vocab 23, context 41, batch 64', () => {
    const fp = trainingFootprint(small, { batch: 64, seqLen: 41 });
    // N = 23·16 + 41·16 + 2·(12·256 + 13·16) + 2·16 = 368 + 656 + 6560 + 32
    expect(fp.params).toBe(7616);
    expect(fp.paramBytes).toBe(30464);
    expect(fp.gradBytes).toBe(30464);
    expect(fp.optimizerBytes).toBe(60928);
    // B·T = 2624: 2·(24·2624·16 + 64·4·41) + 4·2624·16 + 3·2624·23 = 2036224 + 167936 + 181056 elements
    expect(fp.activationBytes).toBe(2385216 * 4);
    expect(fp.totalBytes).toBe(9540864 + 121856);
    // MLP hidden 2624·64·4 beats logits 2624·23·4 = 241408, the MLP weight 4096, wpe 2624, wte 1472
    expect(fp.largest).toEqual({ what: 'MLP hidden activations [64·41, 64]', bytes: 671744 });
  });

  it('precision f16 adds the half copies: linear inputs, the head input, every weight, one output gradient', () => {
    const f32 = trainingFootprint(small, { batch: 64, seqLen: 41 });
    const f16 = trainingFootprint(small, { batch: 64, seqLen: 41, precision: 'f16' });
    // 2·(7·2·2624·16 + 2624·16 + 7616 + 2624·23) = 2·(587776 + 41984 + 7616 + 60352)
    expect(f16.activationBytes - f32.activationBytes).toBe(1395456);
    expect(f16.totalBytes - f32.totalBytes).toBe(1395456);
    expect(f16.paramBytes).toBe(f32.paramBytes);
  });

  it('an untied head counts V·d more parameters; a large vocabulary makes the logits the largest buffer', () => {
    const untied = trainingFootprint({ ...small, tied: false }, { batch: 64, seqLen: 41 });
    expect(untied.params).toBe(7616 + 23 * 16);
    const gpt2 = makeConfig({ size: 'gpt2', vocabSize: 50257, nPositions: 1024 });
    const fp = trainingFootprint(gpt2, { batch: 8, seqLen: 1024 });
    expect(fp.params).toBe(124439808);
    expect(fp.largest).toEqual({ what: 'logits [8·1024, 50257]', bytes: 8 * 1024 * 50257 * 4 });
  });
});

describe('fitProblem', () => {
  it('the default sort run fits lavapipe on a small machine', () => {
    const fp = trainingFootprint(small, { batch: 64, seqLen: 41 });
    expect(fitProblem(fp, LAVAPIPE, { hostBytes: 4 * GiB, software: true }, describeRun(small, 64))).toBeNull();
  });

  it('GPT-2 small, batch 8 of 1024, fits a hardware adapter with 2 GiB bindings, as the H200 has', () => {
    const gpt2 = makeConfig({ size: 'gpt2', vocabSize: 50257, nPositions: 1024 });
    const fp = trainingFootprint(gpt2, { batch: 8, seqLen: 1024 });
    expect(fitProblem(fp, { maxStorageBufferBindingSize: 2 * GiB, maxBufferSize: 2 ** 40 }, { hostBytes: 16 * GiB, software: false }, 'gpt2')).toBeNull();
  });

  it('a buffer over the binding limit is named with both sizes', () => {
    const fp = trainingFootprint(small, { batch: 64, seqLen: 41 });
    const msg = fitProblem(fp, { maxStorageBufferBindingSize: 600_000, maxBufferSize: 2 ** 32 }, { hostBytes: 4 * GiB, software: true }, describeRun(small, 64), 'lower batch_size');
    expect(msg).toBe(
      'model 2_4_16 (vocab 23, context 41), batch 64: the largest buffer, the MLP hidden activations [64·41, 64], needs 656 KiB, ' +
        "over this adapter's maxStorageBufferBindingSize of 586 KiB; lower batch_size",
    );
  });

  it('a 1.5 B-parameter model with a small vocabulary does not fit 23.5 GiB of host memory on a software adapter', () => {
    const xl = makeConfig({ size: '48_25_1600', vocabSize: 23, nPositions: 41 });
    const fp = trainingFootprint(xl, { batch: 8, seqLen: 41 });
    expect(fp.params).toBe(1475664000);
    // 48·(24·328·1600 + 8·25·41) + 4·328·1600 + 3·328·23 = 607,085,032 elements of activations
    expect(fp.activationBytes).toBe(607085032 * 4);
    const msg = fitProblem(fp, LAVAPIPE, { hostBytes: 23.5 * GiB, software: true }, describeRun(xl, 8));
    expect(msg).toBe(
      'model 48_25_1600 (vocab 23, context 41), batch 8: training needs about 40.7 GiB (parameters 5.50 GiB (1,475,664,000), ' +
        "gradients 5.50 GiB, AdamW moments 11.0 GiB, activations of one micro-batch 2.26 GiB, and a checkpoint's host copy of the parameters " +
        "and moments 16.5 GiB), more than this machine's 23.5 GiB of memory, which the software adapter uses as GPU memory; " +
        'use a smaller batch (with gradient accumulation to keep the effective batch), a shorter context, or a smaller model',
    );
    // Batch 1: 22.3 GiB on the device fits 23.5 GiB alone, but not with the checkpoint's 16.5 GiB host copy.
    const one = trainingFootprint(xl, { batch: 1, seqLen: 41 });
    expect(one.totalBytes).toBeLessThan(23.5 * GiB);
    expect(fitProblem(one, LAVAPIPE, { hostBytes: 23.5 * GiB, software: true }, 'xl')).toMatch(/^xl: training needs about 38\.8 GiB .*host copy of the parameters and moments 16\.5 GiB/);
    // On a hardware adapter only the host's checkpoint copy (12·N bytes) counts: it fits there.
    expect(fitProblem(fp, LAVAPIPE, { hostBytes: 23.5 * GiB, software: false }, 'xl')).toBeNull();
    expect(fitProblem(fp, LAVAPIPE, { hostBytes: 8 * GiB, software: false }, 'xl')).toContain('a checkpoint holds the parameters and both AdamW moments in host memory, 16.5 GiB');
  });

  it('formatBytes', () => {
    expect(formatBytes(1000)).toBe('1000 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(5.5 * GiB)).toBe('5.50 GiB');
  });
});
