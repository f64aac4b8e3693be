/**
 * Philox4x32-10 (Salmon et al., SC'11 / Random123) in TypeScript with BigInt products, written
 * independently of the WGSL generator in kernels/random.ts. The dropout and attention-dropout references
 * (test/reference/dropout.ts, test/reference/attention.ts) regenerate their masks with it; test/engine/dropout.test.ts
 * and test/engine/attention.test.ts check it, and the WGSL, against the published known-answer vectors below.
 */

const M0 = 0xd2511f53n;
const M1 = 0xcd9e8d57n;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const MASK32 = 0xffffffffn;

function mulhilo(m: bigint, x: number): [number, number] {
  const p = m * BigInt(x >>> 0);
  return [Number(p >> 32n), Number(p & MASK32)];
}

/** Philox4x32-10 of a 4-word counter under a 2-word key (words taken as u32). */
export function philox4x32(ctr: readonly number[], key: readonly number[]): [number, number, number, number] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0) as [number, number, number, number];
  let [k0, k1] = key.map((v) => v >>> 0) as [number, number];
  for (let r = 0; r < 10; r++) {
    const [hi0, lo0] = mulhilo(M0, c0);
    const [hi1, lo1] = mulhilo(M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** The published Philox4x32-10 known-answer vectors (Random123's kat_vectors). */
export const PHILOX_KAT: { ctr: number[]; key: number[]; out: number[] }[] = [
  { ctr: [0, 0, 0, 0], key: [0, 0], out: [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8] },
  { ctr: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], key: [0xffffffff, 0xffffffff], out: [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd] },
  { ctr: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], key: [0xa4093822, 0x299f31d0], out: [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1] },
];
