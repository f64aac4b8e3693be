// Transfer (spec §5) checked on tensor VALUES, freezing, weight mixtures; and the HF initialisation
// (src/model/hf_names.ts) the fresh target comes from.
import { describe, expect, it } from 'vitest';
import { MT19937 } from '../../src/util/random.ts';
import { makeConfig, type GPTConfig } from '../../src/model/config.ts';
import { checkShapes, decays, fnv1a32, initParams, normaliseHfName, normalStream, paramNames, paramShapes, paramSpecs } from '../../src/model/hf_names.ts';
import {
  applyTransfer,
  freshState,
  mixWeights,
  selectByComponents,
  toStateDict,
  trainableSplit,
  transferInit,
  transferMixture,
  type StateTensor,
} from '../../src/train/transfer.ts';

/** A "pretrained" state with distinct random values in every tensor (LN and biases included). */
function pretrained(cfg: GPTConfig, seed: number): Map<string, StateTensor> {
  const mt = new MT19937(seed);
  return new Map(
    paramSpecs(cfg).map((s) => {
      const a = new Float32Array(s.shape.reduce((x, y) => x * y, 1));
      for (let i = 0; i < a.length; i++) a[i] = mt.nextDouble() * 2 - 1;
      return [s.name, { shape: s.shape, data: a }];
    }),
  );
}

function meanRows(t: StateTensor): Float32Array {
  const [V, d] = t.shape as [number, number];
  const acc = new Float64Array(d);
  for (let r = 0; r < V; r++) for (let j = 0; j < d; j++) acc[j] += t.data[r * d + j]!;
  return Float32Array.from(acc, (x) => x / V);
}

function rows(t: { shape: readonly number[]; data: Float32Array }, from: number, to: number): Float32Array {
  const d = t.shape[1]!;
  return t.data.slice(from * d, to * d);
}

function tile(row: Float32Array, n: number): Float32Array {
  const out = new Float32Array(row.length * n);
  for (let i = 0; i < n; i++) out.set(row, i * row.length);
  return out;
}

// Procedural model (§3.3 inferred for the algorithmic experiments) and the needle model.
const proc = makeConfig({ size: '2_4_16', vocabSize: 102, nPositions: 129, tied: true });
const needle = makeConfig({ size: '2_4_16', vocabSize: 256, nPositions: 100, tied: false, dropout: 0 });
const arith = makeConfig({ size: '2_4_16', vocabSize: 31, nPositions: 40, tied: false, dropout: 0 });
const SEED = 7;
const src = pretrained(proc, 1);
const init = freshState(needle, SEED);

const BLOCK = (n: string) => /\.h\.\d+\./.test(n);
const isAttn = (n: string) => n.includes('attn.c_attn') || n.includes('attn.c_proj');
const isMlp = (n: string) => n.includes('.mlp.');
const isLn = (n: string) => /ln_(1|2|f)\./.test(n);

describe('transfer everything + average (the algorithmic experiments, §5)', () => {
  const r = transferInit(src, needle, { seed: SEED, transfer: ['everything'], embInit: 'average', train: ['everything'] });

  it('copies every attention, MLP and LayerNorm tensor (ln_f included) exactly', () => {
    for (const name of paramNames(needle)) {
      if (BLOCK(name) || name.startsWith('transformer.ln_f')) {
        expect(r.state.get(name)!.data, name).toEqual(src.get(name)!.data);
        expect(r.origin.get(name)).toBe('source');
      }
    }
    expect(r.loaded.length).toBe(2 * 12 + 2);
    expect(r.unexpected).toEqual([]);
  });

  it('sets every wte and lm_head row to the mean pretrained embedding (so initial logits are uniform)', () => {
    const mean = meanRows(src.get('transformer.wte.weight')!);
    expect(r.state.get('transformer.wte.weight')!.data).toEqual(tile(mean, 256));
    expect(r.state.get('lm_head.weight')!.data).toEqual(tile(mean, 256));
    expect(r.origin.get('lm_head.weight')).toBe('average');
  });

  it('copies the first 100 position embeddings of the 129 pretrained ones', () => {
    expect(r.positionsCopied).toBe(true);
    expect(r.state.get('transformer.wpe.weight')!.data).toEqual(rows(src.get('transformer.wpe.weight')!, 0, 100));
    expect(r.origin.get('transformer.wpe.weight')).toBe('wpe[:100]');
  });

  it('trains everything, and returns the target in HF order without touching its inputs', () => {
    expect(r.trainable).toEqual(paramNames(needle));
    expect(r.frozen).toEqual([]);
    expect([...r.state.keys()]).toEqual(paramNames(needle));
    expect(init.get('transformer.h.0.ln_1.weight')!.data.every((x) => x === 1)).toBe(true);
    expect(src.get('transformer.wte.weight')!.data).toEqual(pretrained(proc, 1).get('transformer.wte.weight')!.data);
  });

  it('keeps wpe random when the pretrained context is shorter (P 40 → 100)', () => {
    const short = pretrained(arith, 3); // untied, V 31, P 40: also exercises an untied source
    const r2 = transferInit(short, needle, { seed: SEED, transfer: ['everything'], embInit: 'average' });
    expect(r2.positionsCopied).toBe(false);
    expect(r2.state.get('transformer.wpe.weight')!.data).toEqual(init.get('transformer.wpe.weight')!.data);
    expect(r2.origin.get('transformer.wpe.weight')).toBe('init');
    // The source's untied lm_head is never loaded: the head is the average of the source wte.
    expect(r2.state.get('lm_head.weight')!.data).toEqual(tile(meanRows(short.get('transformer.wte.weight')!), 256));
  });
});

describe('partial transfers (values of every tensor)', () => {
  const check = (components: Parameters<typeof transferInit>[2]['transfer'], fromSource: (n: string) => boolean) => {
    const r = transferInit(src, needle, { seed: SEED, transfer: components });
    for (const name of paramNames(needle)) {
      const want = fromSource(name) ? src.get(name)!.data : init.get(name)!.data;
      expect(r.state.get(name)!.data, `${components.join('+')}: ${name}`).toEqual(want);
    }
    return r;
  };

  it('attn: c_attn and attn.c_proj only; LayerNorms, MLP, embeddings stay random', () => {
    const r = check(['attn'], isAttn);
    expect(r.loaded.length).toBe(2 * 4);
    expect(r.positionsCopied).toBeNull();
  });
  it('ffn: the MLP only', () => void check(['ffn'], isMlp));
  it('ln: ln_1, ln_2, ln_f', () => void check(['ln'], isLn));
  it('attn+ln: attention and ln_1 (not ln_2, not ln_f)', () => void check(['attn+ln'], (n) => isAttn(n) || n.includes('ln_1.')));
  it('heads: c_attn only', () => void check(['heads'], (n) => n.includes('attn.c_attn')));
  it('attn, ffn, ln (the semantic "full-model transfer"): all but wte, wpe, lm_head', () => {
    check(['attn', 'ffn', 'ln'], (n) => BLOCK(n) || n.startsWith('transformer.ln_f'));
  });

  it('embed alone: embeddings initialised, no block weights', () => {
    const r = transferInit(src, needle, { seed: SEED, transfer: ['embed'], embInit: 'average' });
    expect(r.loaded).toEqual([]);
    expect(r.state.get('transformer.h.1.mlp.c_fc.weight')!.data).toEqual(init.get('transformer.h.1.mlp.c_fc.weight')!.data);
    expect(r.state.get('transformer.wpe.weight')!.data).toEqual(rows(src.get('transformer.wpe.weight')!, 0, 100));
    expect(r.state.get('transformer.wte.weight')!.data).toEqual(tile(meanRows(src.get('transformer.wte.weight')!), 256));
  });

  it('attn + embed: both', () => {
    const r = transferInit(src, needle, { seed: SEED, transfer: ['attn', 'embed'] });
    expect(r.state.get('transformer.h.0.attn.c_proj.bias')!.data).toEqual(src.get('transformer.h.0.attn.c_proj.bias')!.data);
    expect(r.origin.get('transformer.wte.weight')).toBe('average');
    expect(r.state.get('transformer.h.0.ln_2.bias')!.data).toEqual(init.get('transformer.h.0.ln_2.bias')!.data);
  });
});

describe('transfer of some blocks only (layers)', () => {
  const check = (opts: Omit<Parameters<typeof transferInit>[2], 'seed'>, fromSource: (n: string) => boolean) => {
    const r = transferInit(src, needle, { seed: SEED, ...opts });
    for (const name of paramNames(needle)) {
      const want = fromSource(name) ? src.get(name)!.data : init.get(name)!.data;
      expect(r.state.get(name)!.data, `${JSON.stringify(opts)}: ${name}`).toEqual(want);
    }
    return r;
  };
  it('attn, layers [0]: block 0 attention only; block 1 keeps the init', () => {
    const r = check({ transfer: ['attn'], layers: [0] }, (n) => isAttn(n) && n.includes('.h.0.'));
    expect(r.loaded.length).toBe(4);
    expect(r.origin.get('transformer.h.1.attn.c_attn.weight')).toBe('init');
  });
  it('attn, layers [1]: block 1 attention only', () => void check({ transfer: ['attn'], layers: [1] }, (n) => isAttn(n) && n.includes('.h.1.')));
  it('attn, layers [0, 1] = every block', () => void check({ transfer: ['attn'], layers: [0, 1] }, isAttn));
  it('ln, layers [1]: block 1 LayerNorms and ln_f (outside the blocks)', () => {
    void check({ transfer: ['ln'], layers: [1] }, (n) => isLn(n) && !n.includes('.h.0.'));
  });
  it('everything, layers [0]: embeddings as usual, block 1 fresh', () => {
    const r = transferInit(src, needle, { seed: SEED, transfer: ['everything'], embInit: 'average', layers: [0] });
    expect(r.state.get('transformer.h.0.mlp.c_fc.weight')!.data).toEqual(src.get('transformer.h.0.mlp.c_fc.weight')!.data);
    expect(r.state.get('transformer.h.1.mlp.c_fc.weight')!.data).toEqual(init.get('transformer.h.1.mlp.c_fc.weight')!.data);
    expect(r.state.get('transformer.ln_f.bias')!.data).toEqual(src.get('transformer.ln_f.bias')!.data);
    expect(r.state.get('transformer.wte.weight')!.data).toEqual(tile(meanRows(src.get('transformer.wte.weight')!), 256));
  });
  it('rejects a block the target lacks, and an empty list', () => {
    expect(() => transferInit(src, needle, { seed: SEED, transfer: ['attn'], layers: [2] })).toThrow(/layers: 2 is not a block of the target model \(blocks 0\.\.1\)/);
    expect(() => transferInit(src, needle, { seed: SEED, transfer: ['attn'], layers: [] })).toThrow(/layers: an empty list/);
  });
});

describe('embedding strategies', () => {
  it('partial_matching: rows < Vp copied, the rest the mean (wte and the untied lm_head)', () => {
    const r = transferInit(src, needle, { seed: SEED, transfer: ['embed'], embInit: 'partial_matching' });
    const E = src.get('transformer.wte.weight')!;
    const mean = meanRows(E);
    for (const name of ['transformer.wte.weight', 'lm_head.weight']) {
      const t = r.state.get(name)!;
      expect(rows(t, 0, 102), name).toEqual(E.data);
      expect(rows(t, 102, 256), name).toEqual(tile(mean, 154));
    }
    expect(() => transferInit(src, arith, { seed: SEED, transfer: ['embed'], embInit: 'partial_matching' })).toThrow(
      /tensor "transformer.wte.weight": 'partial_matching' needs the target vocabulary \(31\) to be at least the pretrained one \(102\)/,
    );
  });

  it('retain: wte = lm_head = E; needs the same vocabulary', () => {
    const same = makeConfig({ size: '2_4_16', vocabSize: 102, nPositions: 64, tied: false });
    const r = transferInit(src, same, { seed: SEED, transfer: ['everything'], embInit: 'retain' });
    expect(r.state.get('transformer.wte.weight')!.data).toEqual(src.get('transformer.wte.weight')!.data);
    expect(r.state.get('lm_head.weight')!.data).toEqual(src.get('transformer.wte.weight')!.data);
    expect(r.state.get('transformer.wpe.weight')!.data).toEqual(rows(src.get('transformer.wpe.weight')!, 0, 64));
    expect(() => transferInit(src, needle, { seed: SEED, transfer: ['everything'], embInit: 'retain' })).toThrow(/'retain' needs the same vocabulary, target has 256 rows, pretrained transformer.wte.weight has 102/);
  });

  it('a tied target has no lm_head: only wte is set', () => {
    const tiedTarget = makeConfig({ size: '2_4_16', vocabSize: 31, nPositions: 40, tied: true });
    const r = transferInit(src, tiedTarget, { seed: SEED, transfer: ['everything'] });
    expect(r.state.has('lm_head.weight')).toBe(false);
    expect(r.state.get('transformer.wte.weight')!.data).toEqual(tile(meanRows(src.get('transformer.wte.weight')!), 31));
  });

  it('rejects an unknown strategy and a source without wte / wpe', () => {
    expect(() => transferInit(src, needle, { seed: SEED, transfer: ['embed'], embInit: 'copy' as never })).toThrow(/unknown embedding init strategy "copy"/);
    const noWte = new Map(src);
    noWte.delete('transformer.wte.weight');
    expect(() => transferInit(noWte, needle, { seed: SEED, transfer: ['everything'] })).toThrow(/source has no "transformer.wte.weight"/);
    const noWpe = new Map(src);
    noWpe.delete('transformer.wpe.weight');
    expect(() => transferInit(noWpe, needle, { seed: SEED, transfer: ['embed'] })).toThrow(/cannot determine its context length/);
    // Without embed/everything, neither is needed.
    expect(() => transferInit(noWte, needle, { seed: SEED, transfer: ['attn'] })).not.toThrow();
  });
});

describe('shapes, names, strictness', () => {
  it('a shape mismatch names the tensor (different hidden size)', () => {
    const wide = pretrained(makeConfig({ size: '2_4_32', vocabSize: 102, nPositions: 129 }), 2);
    expect(() => transferInit(wide, needle, { seed: SEED, transfer: ['attn'] })).toThrow(
      /tensor "transformer.h.0.attn.c_attn.weight": source shape \[32, 96\] does not match target shape \[16, 48\]/,
    );
    expect(() => transferInit(wide, needle, { seed: SEED, transfer: ['embed'] })).toThrow(/tensor "transformer.wte.weight": target width 16 != pretrained transformer.wte.weight width 32/);
  });

  it('a deeper source loads the common layers; the extra ones are unexpected (ignored, or an error when strict)', () => {
    const deep = pretrained(makeConfig({ size: '4_4_16', vocabSize: 102, nPositions: 129 }), 4);
    const r = transferInit(deep, needle, { seed: SEED, transfer: ['ffn'] });
    expect(r.unexpected.length).toBe(2 * 4);
    expect(r.unexpected.every((n) => /\.h\.[23]\./.test(n))).toBe(true);
    expect(r.state.get('transformer.h.1.mlp.c_proj.weight')!.data).toEqual(deep.get('transformer.h.1.mlp.c_proj.weight')!.data);
    expect(() => transferInit(deep, needle, { seed: SEED, transfer: ['ffn'], strict: true })).toThrow(/source tensor "transformer.h.2.mlp.c_fc.weight" has no counterpart/);
  });

  it('accepts Hub-style names without the transformer. prefix and skips attn.bias buffers', () => {
    const hub = new Map<string, StateTensor>();
    for (const [n, t] of src) hub.set(n.replace(/^transformer\./, ''), t);
    hub.set('h.0.attn.bias', { shape: [1, 1, 129, 129], data: new Float32Array(129 * 129) });
    hub.set('h.0.attn.masked_bias', { shape: [], data: Float32Array.of(-1e4) });
    const a = transferInit(hub, needle, { seed: SEED, transfer: ['everything'] });
    const b = transferInit(src, needle, { seed: SEED, transfer: ['everything'] });
    for (const n of paramNames(needle)) expect(a.state.get(n)!.data, n).toEqual(b.state.get(n)!.data);
    const dup = new Map(src);
    dup.set('wte.weight', src.get('transformer.wte.weight')!);
    expect(() => transferInit(dup, needle, { seed: SEED, transfer: ['attn'] })).toThrow(/twice/);
  });

  it('rejects unknown components', () => {
    expect(() => transferInit(src, needle, { seed: SEED, transfer: ['mlp' as never] })).toThrow(/unknown component "mlp"/);
    expect(() => transferInit(src, needle, { seed: SEED, transfer: [], train: ['all' as never] })).toThrow(/train: unknown component "all"/);
  });

  it('toStateDict joins params and shapes', () => {
    const params = initParams(arith, 1);
    const sd = toStateDict(params, paramShapes(arith));
    expect(sd.get('lm_head.weight')!.shape).toEqual([31, 16]);
    expect(() => toStateDict(new Map([['x', new Float32Array(1)]]), new Map())).toThrow(/"x" has no shape/);
  });
});

describe('freezing (§5 step 6)', () => {
  it('train [attn]: only attention trains', () => {
    const r = transferInit(src, needle, { seed: SEED, transfer: ['everything'], train: ['attn'] });
    expect(r.trainable).toEqual(paramNames(needle).filter(isAttn));
    expect(r.frozen).toEqual(paramNames(needle).filter((n) => !isAttn(n)));
  });

  it('train [embed, ln]: wte, wpe, lm_head and the LayerNorms', () => {
    const { trainable } = trainableSplit(paramNames(needle), ['embed', 'ln']);
    expect(trainable).toEqual(paramNames(needle).filter((n) => isLn(n) || /wte|wpe|lm_head/.test(n)));
    expect(selectByComponents(paramNames(needle), ['heads'])).toEqual(paramNames(needle).filter((n) => n.includes('c_attn')));
    expect(selectByComponents(paramNames(needle), ['everything', 'attn'])).toEqual(paramNames(needle));
  });
});

describe('weight mixtures', () => {
  const A = pretrained(proc, 11);
  const B = pretrained(proc, 12);

  it('attention from A, MLP from B, LayerNorms from B, wpe random, embeddings average of A', () => {
    const r = transferMixture(needle, {
      seed: SEED,
      parts: [
        { source: A, components: ['attn'], label: 'set' },
        { source: B, components: ['ffn'], label: 'eca' },
      ],
      layerNorm: 1,
      positions: 'random',
      tokenEmbeddings: { from: 0, init: 'average' },
    });
    for (const name of paramNames(needle)) {
      const t = r.state.get(name)!.data;
      if (isAttn(name)) expect(t, name).toEqual(A.get(name)!.data);
      else if (isMlp(name) || isLn(name)) expect(t, name).toEqual(B.get(name)!.data);
      else if (name === 'transformer.wpe.weight') expect(t).toEqual(init.get(name)!.data);
      else expect(t, name).toEqual(tile(meanRows(A.get('transformer.wte.weight')!), 256));
    }
    expect(r.origin.get('transformer.h.0.attn.c_attn.weight')).toBe('set');
    expect(r.origin.get('transformer.ln_f.bias')).toBe('eca');
    expect(r.origin.get('lm_head.weight')).toBe('set average');
    expect(r.positionsCopied).toBeNull();
  });

  it('LayerNorms random, positions from A', () => {
    const r = mixWeights(freshState(needle, SEED), {
      parts: [
        { source: A, components: ['attn'] },
        { source: B, components: ['ffn'] },
      ],
      layerNorm: 'random',
      positions: 0,
      tokenEmbeddings: 'random',
    });
    expect(r.state.get('transformer.h.1.ln_2.weight')!.data.every((x) => x === 1)).toBe(true);
    expect(r.state.get('transformer.wpe.weight')!.data).toEqual(rows(A.get('transformer.wpe.weight')!, 0, 100));
    expect(r.state.get('transformer.wte.weight')!.data).toEqual(init.get('transformer.wte.weight')!.data);
    expect(r.origin.get('transformer.wpe.weight')).toBe('part0 wpe[:100]');
  });

  it('rejects ambiguous or malformed mixtures', () => {
    const base = { layerNorm: 'random' as const, positions: 'random' as const, tokenEmbeddings: 'random' as const };
    expect(() => mixWeights(init, { ...base, parts: [{ source: A, components: ['attn'] }, { source: B, components: ['heads'] }] })).toThrow(
      /tensor "transformer.h.0.attn.c_attn.weight" is selected by both part0 and part1/,
    );
    expect(() => mixWeights(init, { ...base, parts: [{ source: A, components: ['attn+ln'] }], layerNorm: 0 })).not.toThrow();
    expect(() => mixWeights(init, { ...base, parts: [{ source: A, components: ['attn+ln'] }, { source: B, components: ['ffn'] }], layerNorm: 1 })).toThrow(/ln_1.weight" is selected by both/);
    expect(() => mixWeights(init, { ...base, parts: [{ source: A, components: ['everything'] }] })).toThrow(/'everything' is not allowed in a mixture part/);
    expect(() => mixWeights(init, { ...base, parts: [{ source: A, components: ['attn'] }], positions: 3 })).toThrow(/part index 3 out of range/);
    expect(() => mixWeights(init, { ...base, parts: [] })).toThrow(/at least one part/);
  });
});

describe('HF initialisation (src/model/hf_names.ts)', () => {
  const big = makeConfig({ size: '4_4_256', vocabSize: 31, nPositions: 40, tied: false, dropout: 0 });
  /** Bitwise equality of two float arrays (fast, unlike a deep toEqual on a million elements). */
  const same = (a: Float32Array | undefined, b: Float32Array | undefined): boolean =>
    !!a && !!b && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  const params = initParams(big, 123);

  function stats(a: Float32Array): { mean: number; std: number; kurt: number } {
    let m = 0;
    for (const x of a) m += x;
    m /= a.length;
    let v = 0;
    let k = 0;
    for (const x of a) {
      v += (x - m) ** 2;
      k += (x - m) ** 4;
    }
    v /= a.length;
    return { mean: m, std: Math.sqrt(v), kurt: k / a.length / (v * v) };
  }

  it('draws N(0, 0.02) weights, N(0, 0.02/√(2·n_layer)) c_proj weights, zero biases, unit LayerNorms', () => {
    const projStd = 0.02 / Math.sqrt(2 * big.nLayer);
    for (const s of paramSpecs(big)) {
      const a = params.get(s.name)!;
      expect(a.length).toBe(s.shape.reduce((x, y) => x * y, 1));
      if (s.name.endsWith('bias')) expect(a.every((x) => x === 0), s.name).toBe(true);
      else if (isLn(s.name)) expect(a.every((x) => x === 1), s.name).toBe(true);
      else {
        const st = stats(a);
        const want = s.name.endsWith('c_proj.weight') ? projStd : 0.02;
        expect(s.std).toBeCloseTo(want, 15);
        const se = want / Math.sqrt(a.length);
        expect(Math.abs(st.mean), s.name).toBeLessThan(5 * se);
        expect(Math.abs(st.std / want - 1), s.name).toBeLessThan(5 / Math.sqrt(2 * a.length) + 1e-3);
        if (a.length > 100_000) expect(Math.abs(st.kurt - 3), s.name).toBeLessThan(0.1);
      }
    }
  });

  it('is deterministic per seed, differs across seeds, and does not depend on V, P or depth', () => {
    const again = initParams(big, 123);
    for (const n of paramNames(big)) expect(same(again.get(n), params.get(n)), n).toBe(true);
    expect(same(initParams(big, 124).get('transformer.h.3.mlp.c_fc.weight'), params.get('transformer.h.3.mlp.c_fc.weight'))).toBe(false);
    const other = initParams(makeConfig({ size: '2_4_256', vocabSize: 256, nPositions: 100, tied: true }), 123);
    expect(same(other.get('transformer.h.1.attn.c_attn.weight'), params.get('transformer.h.1.attn.c_attn.weight'))).toBe(true);
    // A larger vocabulary extends the same stream: its first 31 rows are the V = 31 embedding.
    expect(same(other.get('transformer.wte.weight')!.subarray(0, 31 * 256), params.get('transformer.wte.weight'))).toBe(true);
    expect(other.has('lm_head.weight')).toBe(false);
  });

  it('normalStream is the documented Box–Muller over MT19937(init_by_array([seed, fnv1a32(name)]))', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    const mt = new MT19937(0);
    mt.initByArray([5, fnv1a32('w')]);
    const u1 = 1 - mt.nextDouble();
    const u2 = mt.nextDouble();
    const r = Math.sqrt(-2 * Math.log(u1));
    const z = normalStream(5, 'w', 3, 2);
    expect(z[0]).toBe(Math.fround(2 * r * Math.cos(2 * Math.PI * u2)));
    expect(z[1]).toBe(Math.fround(2 * r * Math.sin(2 * Math.PI * u2)));
    expect(() => normalStream(-1, 'w', 1)).toThrow(/seed/);
  });

  it('names and shapes follow HF order; weight-decay rules; name normalisation; shape checks', () => {
    const names = paramNames(arith);
    expect(names.slice(0, 4)).toEqual(['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.0.ln_1.weight', 'transformer.h.0.ln_1.bias']);
    expect(names.at(-1)).toBe('lm_head.weight');
    expect(names.length).toBe(2 + 12 * 2 + 2 + 1);
    const shapes = paramShapes(arith);
    expect(shapes.get('transformer.h.1.attn.c_attn.weight')).toEqual([16, 48]);
    expect(shapes.get('transformer.h.1.mlp.c_proj.weight')).toEqual([64, 16]);
    expect(shapes.get('transformer.h.1.mlp.c_fc.bias')).toEqual([64]);

    expect(names.filter((n) => !decays(n, 'all'))).toEqual([]);
    expect(names.filter((n) => !decays(n, 'hf'))).toEqual(names.filter((n) => n.endsWith('bias') || isLn(n)));
    expect(names.filter((n) => !decays(n, 'bias'))).toEqual(names.filter((n) => n.endsWith('bias')));
    expect(decays('transformer.h.0.ln_1.weight', 'bias')).toBe(true);

    expect(normaliseHfName('h.3.mlp.c_fc.weight')).toBe('transformer.h.3.mlp.c_fc.weight');
    expect(normaliseHfName('wte.weight')).toBe('transformer.wte.weight');
    expect(normaliseHfName('lm_head.weight')).toBe('lm_head.weight');
    expect(normaliseHfName('h.0.attn.bias')).toBeNull();
    expect(normaliseHfName('transformer.h.0.attn.masked_bias')).toBeNull();
    expect(normaliseHfName('transformer.h.0.attn.c_attn.bias')).toBe('transformer.h.0.attn.c_attn.bias');

    const sd = toStateDict(initParams(arith, 1), shapes);
    expect(() => checkShapes(arith, sd, { complete: true })).not.toThrow();
    const bad = new Map(sd);
    bad.set('transformer.ln_f.bias', { shape: [17], data: new Float32Array(17) });
    expect(() => checkShapes(arith, bad)).toThrow(/tensor "transformer.ln_f.bias": shape \[17\] does not match the model's \[16\]/);
    bad.delete('transformer.ln_f.bias');
    expect(() => checkShapes(arith, bad, { complete: true })).toThrow(/missing tensor "transformer.ln_f.bias"/);
    expect(() => checkShapes(arith, new Map([['x', { shape: [1] }]]))).toThrow(/unexpected tensor "x"/);
  });
});
