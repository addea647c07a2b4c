/**
 * What the CLI prints to a terminal and to a pipe: colour by the conventions (NO_COLOR,
 * FORCE_COLOR, a terminal on stdout; `--color`/`--no-color`), detected by picocolors in a real
 * process (the terminal is a pseudo-terminal from util-linux `script`), and timestamps on progress
 * lines when stderr is piped or `--log-timestamps` asks.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { PlainReporter } from '../src/engine/terminal/progress.js';
import { createReporter } from '../src/engine/terminal/reporter.js';
import { fakeCliCommand } from './fixtures/engine-cli.js';
import { CHAIN, cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

/** An SGR escape sequence (`ESC [ ... m`), what colour is made of. */
// eslint-disable-next-line no-control-regex
const ESCAPE = /\u001b\[[0-9;]*m/;
/** An ISO 8601 UTC time to the millisecond, then a run id: a time-stamped progress line. */
const STAMPED = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[g\] /m;

/** The environment of a child: nothing of ours that decides colour, a colour-capable TERM. */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { TERM: 'xterm-256color' };
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}

/** A single-quoted shell word. */
const shellWord = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** The fake-stage CLI with `args`, its stdout and stderr piped. */
async function piped(args: string[], env: Record<string, string> = {}) {
  const [node, ...prefix] = fakeCliCommand();
  return execa(node, [...prefix, ...args], { env: childEnv(env), extendEnv: false, reject: false });
}

/** The fake-stage CLI with `args` on a pseudo-terminal (`script`): what a terminal would show. */
async function onTerminal(args: string[], env: Record<string, string> = {}) {
  const command = [...fakeCliCommand(), ...args].map(shellWord).join(' ');
  return execa('script', ['-qec', command, '/dev/null'], { env: childEnv(env), extendEnv: false, reject: false });
}

function setup() {
  const dir = tempDir();
  return { file: writeFileIn(dir, 'p.yaml', CHAIN), store: `${dir}/store` };
}

describe('colour', () => {
  it('a terminal gets colour, unless NO_COLOR is set or --no-color given', async () => {
    const { file, store } = setup();
    const status = ['status', file, '--store', store];
    const tty = await onTerminal(status);
    expect(tty.exitCode, tty.stdout).toBe(0);
    expect(tty.stdout).toContain('planned');
    expect(tty.stdout).toMatch(ESCAPE);
    const noColor = await onTerminal(status, { NO_COLOR: '1' });
    expect(noColor.stdout).toContain('planned');
    expect(noColor.stdout).not.toMatch(ESCAPE);
    const flag = await onTerminal([...status, '--no-color']);
    expect(flag.stdout).toContain('planned');
    expect(flag.stdout).not.toMatch(ESCAPE);
  });

  it('a pipe gets none, unless FORCE_COLOR is set or --color given', async () => {
    const { file, store } = setup();
    const status = ['status', file, '--store', store];
    const plain = await piped(status);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('planned');
    expect(plain.stdout).not.toMatch(ESCAPE);
    const forced = await piped(status, { FORCE_COLOR: '1' });
    expect(forced.stdout).toMatch(ESCAPE);
    const flag = await piped([...status, '--color']);
    expect(flag.stdout).toMatch(ESCAPE);
  });

  it('--color and --no-color decide in-process too, before or after the command', async () => {
    const { file, store } = setup();
    expect((await cli(['status', file, '--store', store, '--color'])).stdout).toMatch(ESCAPE);
    expect((await cli(['--color', 'status', file, '--store', store])).stdout).toMatch(ESCAPE);
    expect((await cli(['status', file, '--store', store])).stdout).not.toMatch(ESCAPE);
    expect((await cli(['status', file, '--store', store, '--no-color'], { color: true })).stdout).not.toMatch(ESCAPE);
  });
});

describe('timestamps', () => {
  it('piped progress lines start with the time; --no-log-timestamps drops it', async () => {
    const { file, store } = setup();
    const r = await piped(['run', file, '--store', store, '--jobs', '1']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(STAMPED);
    for (const line of r.stderr.trim().split('\n')) expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \[/);
    const off = await piped(['run', file, '--store', store, '--jobs', '1', '--no-log-timestamps']);
    expect(off.stderr).toMatch(/^\[g\] cached$/m);
    expect(off.stderr).not.toMatch(STAMPED);
  });

  it('--log-timestamps stamps lines in-process, where the default is none', async () => {
    const { file, store } = setup();
    const plain = await cli(['run', file, '--store', store]);
    expect(plain.stderr).toMatch(/^\[g\] running/m);
    const stamped = await cli(['run', file, '--store', `${store}2`, '--log-timestamps']);
    expect(stamped.stderr).toMatch(STAMPED);
    const verify = await cli(['verify', file, '--store', store, '--log-timestamps']);
    expect(verify.stderr).toMatch(STAMPED);
  });

  it('a plain reporter stamps each line with its clock; an explicit --log-timestamps replaces the live view', async () => {
    let out = '';
    const clock = () => new Date(Date.UTC(2025, 5, 1, 12, 3, 4, 512));
    const r = new PlainReporter({ write: (s: string) => (out += s) }, 0, { timestamps: true, now: clock });
    r.event('model', { kind: 'running', reason: 'new' });
    r.event('model', { kind: 'log', message: 'hello' });
    expect(out).toBe('2025-06-01T12:03:04.512Z [model] running (new)\n2025-06-01T12:03:04.512Z [model] hello\n');
    const sink = { write: () => true };
    const live = await createReporter({
      tty: true,
      json: false,
      timestamps: { on: true, explicit: false },
      stderr: sink,
    });
    expect(live).not.toBeInstanceOf(PlainReporter);
    const lines = await createReporter({
      tty: true,
      json: false,
      timestamps: { on: true, explicit: true },
      stderr: sink,
    });
    expect(lines).toBeInstanceOf(PlainReporter);
  });
});
