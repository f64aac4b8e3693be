#!/usr/bin/env python3
"""Independent Python reference for the downstream algorithmic tasks (spec §6), standard library only.

Written from the spec's prose (§6.2–§6.6) and checked against the §11 vectors (run this file with
`--check`). It is the oracle for src/data/tasks/: `python3 test/tasks/reference_tasks.py > test/tasks/golden.json`
regenerates the golden file that test/tasks/{tasks,harness,cli}.test.ts compare against. Must be run with CPython 3.11
(the `random` module's call sequence is what the vectors pin down).

Each generator draws from the module-level `random` exactly in the order the reference's gen_single() does:
  needle (condattendstream_M): n = randint(1, M); keys = shuffle(range(M))[:n]; one randint(1, H-1) per key;
      q = choice(keys).
  additionstream_N / forwardaddition_N / multiplication_N: for each operand, first randint(N, N) for its
      digit count (a draw that can only return N), then randint(10**(d-1), 10**d - 1).
  sort_N ([inferred]): N draws of randint(1, V-1), V = 100.
"""
import hashlib
import json
import random
import sys

# ---------------------------------------------------------------------------------------------- tasks

NEEDLE_W = 256
PLUS, EQ, PAD_ARITH, STOP, RESULT_OFFSET = 10, 11, 12, 30, 20
SORT_V = 100


def needle(M):
    H = NEEDLE_W // 2
    T = 2 * M + 3

    def gen():
        n = random.randint(1, M)
        keys = list(range(M))
        random.shuffle(keys)
        keys = keys[:n]
        vals = [random.randint(1, H - 1) for _ in keys]
        q = random.choice(keys)
        ids = []
        for k, v in zip(keys, vals):
            ids += [k + H, v]
        ids += [q + M + H, vals[keys.index(q)]]
        return ids + [0] * (T - len(ids))

    def wanted(ids, fix=False):
        return [1 if p < T - 1 and ids[p] >= M + H else 0 for p in range(T)]

    return gen, wanted, T


def operand(N):
    d = random.randint(N, N)  # the digit-count draw
    return random.randint(10 ** (d - 1), 10 ** d - 1)


def digits(x):
    return [int(c) for c in str(x)]


def arith(kind, N):
    T = 5 * N + 4 if kind == 'multiplication' else 3 * N + 4

    def gen():
        a = operand(N)
        b = operand(N)
        if kind == 'additionstream':
            ids = digits(a)[::-1] + [PLUS] + digits(b)[::-1] + [EQ] + [d + RESULT_OFFSET for d in digits(a + b)[::-1]]
        elif kind == 'forwardaddition':
            ids = digits(a) + [PLUS] + digits(b) + [EQ] + [d + RESULT_OFFSET for d in digits(a + b)]
        else:
            ids = digits(a) + [PLUS] + digits(b) + [EQ] + [d + RESULT_OFFSET for d in digits(a * b)]
        ids.append(STOP)
        return ids + [PAD_ARITH] * (T - len(ids))

    def wanted(ids, fix=False):
        return [1 if p < T - 1 and (ids[p] >= RESULT_OFFSET or (fix and ids[p] == EQ)) else 0 for p in range(T)]

    return gen, wanted, T


def sort_task(N):
    T = 2 * N + 1

    def gen():
        x = [random.randint(1, SORT_V - 1) for _ in range(N)]
        return x + [SORT_V] + sorted(x)

    def wanted(ids, fix=False):
        sep = ids.index(SORT_V)
        return [1 if sep <= p < T - 1 else 0 for p in range(T)]

    return gen, wanted, T


def task(task_id):
    family, n = task_id.rsplit('_', 1)
    n = int(n)
    if family == 'condattendstream':
        return needle(n)
    if family in ('additionstream', 'forwardaddition', 'multiplication'):
        return arith(family, n)
    if family == 'sort':
        return sort_task(n)
    raise ValueError(task_id)


# ---------------------------------------------------------------------------------------------- harness (§6.1)

def make_test_set(gen, seed, size=4000):
    random.seed(seed)
    test = [gen() for _ in range(size)]
    random.shuffle(test)
    return test


def stream_rows(gen, test, count, stream_seed=42):
    """First `count` rows of the training stream and the number of samples dropped to get them."""
    random.seed(stream_seed)
    seen = set(tuple(t) for t in test)
    rows, dropped = [], 0
    while len(rows) < count:
        s = gen()
        if tuple(s) in seen:
            dropped += 1
        else:
            rows.append(s)
    return rows, dropped


def sha16(rows):
    h = hashlib.sha256()
    for r in rows:
        h.update((','.join(map(str, r)) + '\n').encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- checks and golden

SPEC_VECTORS = {
    'condattendstream_30': [147, 76, 142, 36, 138, 104, 152, 112, 155, 1, 134, 98, 133, 104, 140, 21, 139, 90, 143, 55,
                            137, 44, 154, 36, 148, 20, 150, 28, 144, 123, 156, 98, 129, 44, 141, 14, 146, 12, 130, 49,
                            145, 13, 184, 36] + [0] * 19,
    'additionstream_10': [1, 6, 9, 4, 5, 3, 7, 9, 6, 9, 10, 2, 1, 5, 2, 0, 8, 1, 5, 0, 2, 11, 23, 27, 24, 27, 25, 21, 29,
                          24, 27, 21, 21, 30],
    'forwardaddition_5': [1, 3, 2, 7, 8, 10, 4, 2, 0, 9, 8, 11, 25, 25, 23, 27, 26, 30, 12],
    'multiplication_5': [1, 3, 2, 7, 8, 10, 4, 2, 0, 9, 8, 11, 25, 25, 28, 29, 27, 27, 22, 24, 24, 30] + [12] * 7,
}


def check():
    for tid, want in SPEC_VECTORS.items():
        gen, _, _ = task(tid)
        random.seed(42)
        got = gen()
        assert got == want, (tid, got)
    print('all §11 vectors reproduced', file=sys.stderr)


SAMPLE_TASKS = ['condattendstream_30', 'condattendstream_5', 'additionstream_10', 'additionstream_3',
                'forwardaddition_5', 'forwardaddition_2', 'multiplication_5', 'multiplication_2', 'sort_10', 'sort_4']
SEEDS = [0, 1, 7, 42]
# Tasks small enough that the training stream meets test sequences often (§6.1 dropping).
HARNESS = [('forwardaddition_1', 0, 40), ('forwardaddition_2', 0, 4000), ('condattendstream_2', 3, 4000), ('additionstream_10', 0, 4000),
           ('condattendstream_30', 42, 4000), ('forwardaddition_1', 5, 50)]


def golden():
    out = {'python': sys.version.split()[0], 'samples': {}, 'harness': []}
    for tid in SAMPLE_TASKS:
        gen, wanted, T = task(tid)
        per_seed = {}
        for seed in SEEDS:
            random.seed(seed)
            rows = [gen() for _ in range(5)]
            for r in rows:
                assert len(r) == T
            per_seed[str(seed)] = [{'ids': r, 'wanted': [p for p, w in enumerate(wanted(r)) if w],
                                    'wanted_fixed': [p for p, w in enumerate(wanted(r, True)) if w]} for r in rows]
        out['samples'][tid] = per_seed
    for tid, seed, size in HARNESS:
        gen, _, _ = task(tid)
        test = make_test_set(gen, seed, size)
        rows, dropped = stream_rows(gen, test, 600)
        out['harness'].append({
            'task': tid, 'seed': seed, 'size': size,
            'test_first': test[:3], 'test_sha16': sha16(test),
            'stream_first': rows[:3], 'stream_sha16_600': sha16(rows), 'stream_dropped_600': dropped,
        })
    return out


if __name__ == '__main__':
    check()
    if '--check' not in sys.argv:
        json.dump(golden(), sys.stdout, separators=(',', ':'))
        sys.stdout.write('\n')
