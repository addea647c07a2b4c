#!/usr/bin/env node
// Chaos check of crash safety: runs a pipeline once uninterrupted (the reference), then, for each
// trial, runs it into a fresh store, interrupts it at a random moment (SIGKILL of the driver, or
// SIGINT to its process group as Ctrl-C does), runs it again to completion, and compares every
// run's content hash with the reference's. Each rerun must also leave no temporary and no process
// of the interrupted run behind. Exit 0 when every trial matches, 1 otherwise.
//
//   node scripts/chaos.mjs [--pipeline FILE] [--set k=v]... [--kills N] [--interrupts N]
//     [--seed S] [--jobs N] [--cli "node bin/grokpipe.js"] [--keep] [--json]
//
// Defaults: the quickstart at --set model.with.max_steps=200, 30 kills and 10 interrupts, the
// built CLI (`npm run build` first). The seed is printed; rerun with it to draw the same moments.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    pipeline: { type: 'string', default: join(root, 'pipelines', 'quickstart.yaml') },
    set: { type: 'string', multiple: true },
    kills: { type: 'string', default: '30' },
    interrupts: { type: 'string', default: '10' },
    seed: { type: 'string' },
    jobs: { type: 'string', default: '2' },
    cli: { type: 'string', default: `${process.execPath} ${join(root, 'bin', 'grokpipe.js')}` },
    keep: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const sets = opts.set ?? (opts.pipeline.endsWith('quickstart.yaml') ? ['model.with.max_steps=200'] : []);
const seed = opts.seed !== undefined ? Number(opts.seed) : Date.now() % 2 ** 32;
const [cliCmd, ...cliArgs] = opts.cli.split(' ').filter(Boolean);
const work = mkdtempSync(join(tmpdir(), 'grokpipe-chaos-'));
const say = (line) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);

/** mulberry32: a small seeded generator of numbers in [0, 1). */
function random(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Starts `grokpipe run` on `store` in its own process group. */
function start(store) {
  const args = [
    ...cliArgs,
    'run',
    opts.pipeline,
    '--store',
    store,
    '--jobs',
    opts.jobs,
    '--json',
    ...sets.flatMap((s) => ['--set', s]),
  ];
  const child = spawn(cliCmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((done) => child.on('close', (code, signal) => done({ code, signal, stdout, stderr })));
  return { child, exited, started: performance.now() };
}

/** Runs to completion. @returns {{code, signal, stdout, stderr, seconds}} */
async function complete(store) {
  const run = start(store);
  const r = await run.exited;
  return { ...r, seconds: (performance.now() - run.started) / 1000 };
}

/** `{id: content hash}` of a finished `--json` run, from the manifests in the store. */
function contentHashes(store, stdout) {
  const out = {};
  for (const r of JSON.parse(stdout).runs) {
    if (r.key === null) throw new Error(`${r.id} has no key (${r.status}: ${r.reason})`);
    const m = JSON.parse(readFileSync(join(store, r.stage, r.key, 'manifest.json'), 'utf8'));
    out[r.id] = m.content_hash;
  }
  return out;
}

/** The run ids `[id] running` without a later end line in the plain progress of stderr. */
function running(stderr) {
  const open = new Set();
  for (const line of stderr.split('\n')) {
    const m = /^\[([^\]]+)\] (running|done|cached|failed|skipped)(: interrupted)?/.exec(line);
    if (!m || m[3]) continue;
    if (m[2] === 'running') open.add(m[1]);
    else open.delete(m[1]);
  }
  return [...open];
}

/** Temporaries left in a store: `.tmp/*`, `*.tmp-<pid>` in checkpoint folders, `.uses/*.tmp`. */
function leftovers(store) {
  const list = (d) => (existsSync(d) ? readdirSync(d) : []);
  const out = list(join(store, '.tmp')).map((n) => `.tmp/${n}`);
  for (const key of list(join(store, '.checkpoints'))) {
    for (const n of list(join(store, '.checkpoints', key)))
      if (/\.tmp-\d+$/.test(n)) out.push(`.checkpoints/${key}/${n}`);
  }
  for (const n of list(join(store, '.uses'))) if (n.endsWith('.tmp')) out.push(`.uses/${n}`);
  return out;
}

/** Pids of live processes (not zombies) whose command line names `store`. */
function processesOf(store) {
  const pids = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (!readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(store)) continue;
      if (readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) continue;
      pids.push(Number(p));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

say(`chaos: ${opts.pipeline} ${sets.map((s) => `--set ${s}`).join(' ')} --jobs ${opts.jobs}; seed ${seed}; in ${work}`);
const ref = join(work, 'reference');
const first = await complete(ref);
if (first.code !== 0) throw new Error(`the reference run failed (exit ${first.code}):\n${first.stderr}`);
const want = contentHashes(ref, first.stdout);
const span = first.seconds;
say(`reference: ${Object.keys(want).length} runs in ${span.toFixed(1)} s`);

const draw = random(seed);
const plan = [...Array(Number(opts.kills)).fill('SIGKILL'), ...Array(Number(opts.interrupts)).fill('SIGINT')];
const trials = [];
for (const [i, signal] of plan.entries()) {
  const store = join(work, `trial-${i + 1}`);
  const at = draw() * span;
  const run = start(store);
  const early = await Promise.race([run.exited.then(() => true), sleep(at * 1000).then(() => false)]);
  if (!early) {
    // Ctrl-C reaches the whole foreground process group; kill -9 only the driver.
    if (signal === 'SIGINT') process.kill(-run.child.pid, 'SIGINT');
    else run.child.kill('SIGKILL');
  }
  const killed = await run.exited;
  const during = running(killed.stderr);
  const again = await complete(store);
  const problems = [];
  const orphans = processesOf(store);
  if (orphans.length > 0)
    problems.push(`processes of the interrupted run alive after the rerun: ${orphans.join(', ')}`);
  // 130 once grokpipe handles Ctrl-C; killed by the signal itself before it could (Node starting).
  if (signal === 'SIGINT' && !early && killed.code !== 130 && killed.signal !== 'SIGINT') {
    problems.push(`Ctrl-C ended the run with ${killed.code ?? killed.signal}, not 130`);
  }
  let got = {};
  if (again.code !== 0) problems.push(`rerun exit ${again.code}: ${again.stderr.split('\n').slice(-4).join(' | ')}`);
  else {
    got = contentHashes(store, again.stdout);
    for (const [id, hash] of Object.entries(want))
      if (got[id] !== hash)
        problems.push(`${id}: content hash ${String(got[id]).slice(0, 12)}, uninterrupted ${hash.slice(0, 12)}`);
  }
  const left = leftovers(store);
  if (left.length > 0) problems.push(`temporaries left: ${left.join(', ')}`);
  const trained = JSON.parse(again.stdout || '{"runs":[]}').runs.find((r) => r.stage === 'train' && r.key);
  const resumed = trained
    ? JSON.parse(readFileSync(join(store, 'train', trained.key, 'manifest.json'), 'utf8')).info.resumed_from_step
    : undefined;
  const trial = {
    trial: i + 1,
    signal,
    at: Number(at.toFixed(2)),
    finished_first: early,
    during,
    resumed_from_step: resumed ?? null,
    equal: problems.length === 0,
    problems,
  };
  trials.push(trial);
  say(
    `${String(i + 1).padStart(2)} ${signal.padEnd(7)} at ${at.toFixed(2)} s ${early ? '(finished first)' : `during ${during.join(', ') || 'start-up'}`}` +
      `${resumed ? `, resumed from step ${resumed}` : ''}: ${problems.length === 0 ? 'content hashes equal' : `DIFFERENT\n     ${problems.join('\n     ')}`}`,
  );
  if (!opts.keep && problems.length === 0) rmSync(store, { recursive: true, force: true });
}
const bad = trials.filter((t) => !t.equal).length;
const landed = trials.filter((t) => !t.finished_first).length;
say(
  `${trials.length - bad}/${trials.length} trials equal to the uninterrupted run (${landed} interrupted mid-run); seed ${seed}`,
);
if (opts.json)
  process.stdout.write(
    `${JSON.stringify({ seed, reference_seconds: span, trials, equal: trials.length - bad, different: bad })}\n`,
  );
if (!opts.keep && bad === 0) rmSync(work, { recursive: true, force: true });
process.exitCode = bad === 0 ? 0 : 1;
