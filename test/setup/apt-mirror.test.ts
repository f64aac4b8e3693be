// scripts/apt-mirror.sh: the backports line comes from the mirror the machine already uses (deb822 and
// one-line sources, security mirrors skipped, several URIs), never from a fixed host. Runs the script on
// sample /etc/apt trees; apt itself is never called.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const SCRIPT = path.join(import.meta.dirname, '..', '..', 'scripts', 'apt-mirror.sh');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kindling-apt-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** An apt etc dir with the given files (paths relative to it), then the script's stdout and status. */
function run(files: Record<string, string>, codename = 'bookworm'): { out: string[]; status: number | null } {
  const etc = path.join(root, `etc-${counter++}`);
  fs.mkdirSync(path.join(etc, 'sources.list.d'), { recursive: true });
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(etc, f), text);
  const r = spawnSync('bash', [SCRIPT, codename, etc], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return { out: r.stdout.split('\n').filter((l) => l), status: r.status };
}

const DEB822 = `Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

describe('scripts/apt-mirror.sh', () => {
  it('is valid bash', () => {
    expect(spawnSync('bash', ['-n', SCRIPT]).status).toBe(0);
  });

  it('deb822: the URI of the stanza serving the release, its keyring carried over, the security stanza skipped', () => {
    const r = run({ 'sources.list.d/debian.sources': DEB822 });
    expect(r.status).toBe(0);
    expect(r.out).toEqual(['deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm-backports main']);
  });

  it('deb822: several URIs give one line each; deb-src-only and disabled stanzas are skipped', () => {
    const r = run({
      'sources.list.d/a.sources': `Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n`,
      'sources.list.d/debian.sources': `Types: deb deb-src\nURIs: http://one.example/debian http://proxy.internal:3142/debian\nSuites: bookworm\nComponents: main contrib\n`,
    });
    expect(r.out).toEqual(['deb http://one.example/debian bookworm-backports main', 'deb http://proxy.internal:3142/debian bookworm-backports main']);
  });

  it('deb822: an inline Signed-By key block is not carried (no options), a continuation line does not break parsing', () => {
    const r = run({
      'sources.list.d/debian.sources': `Types: deb\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\nURIs: https://mirror.example/debian/\nSuites: bookworm\nComponents: main\n`,
    });
    expect(r.out).toEqual(['deb https://mirror.example/debian/ bookworm-backports main']);
  });

  it('one-line format: options kept, comments, deb-src, other suites and security mirrors skipped, duplicates once', () => {
    const r = run({
      'sources.list': [
        '# deb http://commented.example/debian bookworm main',
        'deb-src http://src.example/debian bookworm main',
        'deb [arch=amd64 signed-by=/etc/apt/keyrings/m.gpg] http://mirror.example/debian bookworm main contrib  # trailing comment',
        'deb http://mirror.example/debian bookworm-updates main',
        'deb http://security.example/debian-security bookworm-security main',
        'deb http://security.example/debian-security/ bookworm main',
        'deb [arch=amd64 signed-by=/etc/apt/keyrings/m.gpg] http://mirror.example/debian bookworm non-free',
        '',
      ].join('\n'),
      'sources.list.d/other.list': 'deb https://packages.example/apt cloud-sdk-bookworm main\n',
    });
    expect(r.out).toEqual(['deb [arch=amd64 signed-by=/etc/apt/keyrings/m.gpg] http://mirror.example/debian bookworm-backports main']);
  });

  it('both formats at once, in file order: sources.list first, then sources.list.d', () => {
    const r = run({
      'sources.list': 'deb http://old.example/debian bookworm main\n',
      'sources.list.d/debian.sources': DEB822,
    });
    expect(r.out).toEqual([
      'deb http://old.example/debian bookworm-backports main',
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm-backports main',
    ]);
  });

  it('other codenames follow the argument; no mirror for it (or no sources at all) exits 1 with no output', () => {
    expect(run({ 'sources.list.d/debian.sources': DEB822.replaceAll('bookworm', 'trixie') }, 'trixie').out).toEqual([
      'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian trixie-backports main',
    ]);
    const none = run({ 'sources.list.d/debian.sources': DEB822 }, 'trixie');
    expect(none).toEqual({ out: [], status: 1 });
    expect(run({})).toEqual({ out: [], status: 1 });
  });

  it('setup.sh and the device module name no mirror host; setup.sh takes the line from this script', () => {
    const repo = path.join(import.meta.dirname, '..', '..');
    const setup = fs.readFileSync(path.join(repo, 'scripts', 'setup.sh'), 'utf8');
    const device = fs.readFileSync(path.join(repo, 'engine', 'device.ts'), 'utf8');
    for (const text of [setup, device]) expect(text).not.toMatch(/https?:\/\/[a-z0-9.-]+\.(org|com|net)\b/i);
    expect(setup).toContain('scripts/apt-mirror.sh bookworm');
  });
});
