/**
 * `grokpipe export --format hf` (src/commands/export.ts): a tiny GPT-2, LLaMA, RWKV-4 and Mamba
 * are trained on the comparison task and exported; the folder's files, names and config fields
 * are checked here, the errors exit 2 with nothing written, and then each folder is loaded with
 * Hugging Face `transformers` on PyTorch in `.venv/` (`python/check_hf_export.py`): its tokenizer
 * must give grokpipe's token ids for 100 test facts' prompts, and its logits at the answer
 * position must equal grokpipe's to 1e-4.
 *
 * The Python part is skipped, with the reason, where `.venv/` or transformers/torch are missing;
 * with `GROKPIPE_REQUIRE_PYTHON=1` (as `.ci/run` sets) it fails instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/models/backend.js';
import { contentHash, sha256 } from '../src/engine/cache/hash.js';
import type { Manifest } from '../src/engine/cache/manifest.js';
import { createModel } from '../src/models/arch/factories.js';
import { toHuggingFace } from '../src/models/arch/hf.js';
import { decodeSafetensors, encodeSafetensors } from '../src/models/safetensors.js';
import { makeRng } from '../src/models/train-rng.js';
import { CONFIG_METADATA_KEY, modelFromSafetensors, modelToSafetensors } from '../src/models/weights.js';
import { hfTokenizerFiles } from '../src/task/hf-tokenizer.js';
import { buildVocabulary } from '../src/task/vocab.js';
import { tableToExamples } from '../src/stages/examples.js';
import { keptCheckpointFile, keptCheckpointStep, WEIGHTS_FILE } from '../src/stages/files.js';
import { builtinStages } from '../src/stages/index.js';
import { readTable } from '../src/table/parquet.js';
import { column } from '../src/table/table.js';
import { cli, tempDir, writeFileIn } from './fixtures/engine-harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PYTHON = join(ROOT, '.venv', 'bin', 'python');
const REQUIRE = process.env.GROKPIPE_REQUIRE_PYTHON === '1';

/** Why the transformers check cannot run here, or null when it can. */
function missingPython(): string | null {
  const setup = 'python3 -m venv .venv && .venv/bin/pip install -r python/requirements-test.txt';
  if (!existsSync(PYTHON)) return `${PYTHON} not found (${setup})`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, transformers, tokenizers'], { encoding: 'utf8' });
  if (probe.status !== 0)
    return `.venv cannot import torch, transformers and tokenizers (${setup}): ${probe.stderr.trim()}`;
  return null;
}
const missing = missingPython();
if (missing && !REQUIRE)
  console.warn(`export-hf: transformers check skipped (set GROKPIPE_REQUIRE_PYTHON=1 to fail instead): ${missing}`);

/** Four tiny models on one small task, 2 blocks each (so that the last-block shortcut is crossed). */
const MODELS = {
  gpt2: '{ arch: gpt2, n_layers: 2, d_model: 16, n_heads: 2 }',
  llama: '{ arch: llama, n_layers: 2, d_model: 16, n_heads: 2, rope_base: 500 }',
  rwkv: '{ arch: rwkv, n_layers: 2, d_model: 16 }',
  mamba: '{ arch: mamba, n_layers: 2, d_model: 16, d_state: 4 }',
};
const ARCHS = ['gpt2', 'llama', 'rwkv', 'mamba'] as const;
const PIPELINE = `
name: export-hf
stages:
  kb: { uses: generate, with: { entities: 24, attributes: 2, values: 5, seed: 3 } }
  facts: { uses: split, needs: [kb], with: { id_fraction: 0.75, phi: 2, test_size: 40 } }
  tokens: { uses: tokenize, needs: [facts] }
${ARCHS.map(
  (arch) => `  ${arch}:
    uses: train
    needs: [tokens]
    with:
      model: ${MODELS[arch]}
      optimizer: { lr: 3.0e-3, warmup_steps: 5, batch_size: 32 }
      max_steps: 60
      eval_every: 30`,
).join('\n')}
  scores: { uses: evaluate, needs: [gpt2, tokens] }
`;
/** Test facts compared per model. */
const FACTS = 100;

let dir: string;
let file: string;
let store: string;
const exported: Record<string, string> = {};

/** Token strings by id of a `vocab.parquet` (its ids are 0..n-1 in order). */
async function readVocabFile(path: string): Promise<string[]> {
  const table = await readTable(path);
  const ids = Array.from(column(table, 'id', 'INT32'));
  expect(ids).toEqual(ids.map((_, i) => i));
  return [...column(table, 'token', 'STRING')];
}

/** `grokpipe export <target> --file <pipeline> --store <store> ...`. */
const exportCli = (target: string, ...args: string[]) =>
  cli(['export', target, '--file', file, '--store', store, ...args], { stages: builtinStages });

/** `show --json` of a run: its folder and manifest. */
async function shown(
  id: string,
): Promise<{ dir: string; manifest: { key: string; inputs: { stage: string; key: string }[] } }> {
  const res = await cli(['show', id, '--file', file, '--store', store, '--json', '--rows', '0'], {
    stages: builtinStages,
  });
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as Awaited<ReturnType<typeof shown>>;
}

beforeAll(async () => {
  dir = tempDir('gp-export-');
  file = writeFileIn(dir, 'export.yaml', PIPELINE);
  store = join(dir, 'artifacts');
  const run = await cli(['run', file, '--store', store, '--jobs', '1', '--json'], { stages: builtinStages });
  expect(run.code, run.stderr).toBe(0);
  for (const arch of ARCHS) {
    exported[arch] = join(dir, 'exported', arch);
    const res = await exportCli(arch, '--format', 'hf', '--out', exported[arch], '--json');
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ dir: exported[arch], stage: 'train' });
  }
});

describe('grokpipe export --format hf', () => {
  it('writes config.json, model.safetensors and the tokenizer files, under transformers’ names', async () => {
    const classes = {
      gpt2: 'GPT2LMHeadModel',
      llama: 'LlamaForCausalLM',
      rwkv: 'RwkvForCausalLM',
      mamba: 'MambaForCausalLM',
    };
    for (const arch of ARCHS) {
      expect(readdirSync(exported[arch]).sort(), arch).toEqual([
        'config.json',
        'model.safetensors',
        'special_tokens_map.json',
        'tokenizer.json',
        'tokenizer_config.json',
      ]);
      const config = JSON.parse(readFileSync(join(exported[arch], 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(config.architectures, arch).toEqual([classes[arch]]);
      expect(config.model_type, arch).toBe(arch);
      expect(config).toMatchObject({ pad_token_id: 0, eos_token_id: 3, bos_token_id: null, torch_dtype: 'float32' });
      const source = await shown(arch);
      const weights = decodeSafetensors(readFileSync(join(source.dir, 'weights.safetensors')));
      const out = decodeSafetensors(readFileSync(join(exported[arch], 'model.safetensors')));
      expect(out.metadata.format).toBe('pt');
      expect(out.tensors.size, arch).toBe(weights.tensors.size);
      // renamed, never changed
      const values = (st: typeof out) => [...st.tensors.values()].map((t) => Array.from(t.data as Float32Array));
      expect(values(out), arch).toEqual(values(weights));
    }
    const names = (arch: string) => [
      ...decodeSafetensors(readFileSync(join(exported[arch], 'model.safetensors'))).tensors.keys(),
    ];
    expect(names('gpt2')).toContain('transformer.h.1.attn.c_attn.weight');
    expect(names('gpt2')).not.toContain('lm_head.weight'); // tied
    expect(names('llama')).toContain('lm_head.weight'); // untied
    expect(names('rwkv')).toEqual(
      expect.arrayContaining([
        'rwkv.embeddings.weight',
        'rwkv.blocks.0.pre_ln.weight',
        'rwkv.blocks.1.attention.time_decay',
        'rwkv.blocks.1.attention.time_mix_receptance',
        'rwkv.blocks.1.feed_forward.key.weight',
        'rwkv.ln_out.bias',
        'head.weight',
      ]),
    );
    expect(names('mamba')).toContain('backbone.embeddings.weight');
    expect(names('mamba')).not.toContain('lm_head.weight'); // tied
    const gpt2 = JSON.parse(readFileSync(join(exported.gpt2, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(gpt2).toMatchObject({
      n_layer: 2,
      n_embd: 16,
      n_head: 2,
      n_inner: 64,
      n_positions: 5,
      activation_function: 'gelu_new',
      tie_word_embeddings: true,
    });
    const llama = JSON.parse(readFileSync(join(exported.llama, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(llama).toMatchObject({
      hidden_size: 16,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_theta: 500,
      tie_word_embeddings: false,
    });
    const tokenizer = JSON.parse(readFileSync(join(exported.gpt2, 'tokenizer.json'), 'utf8')) as {
      model: { type: string; vocab: Record<string, number> };
      pre_tokenizer: { type: string };
    };
    expect(tokenizer.model.type).toBe('WordLevel');
    expect(tokenizer.pre_tokenizer.type).toBe('WhitespaceSplit');
    const vocab = await readVocabFile(join(store, 'tokenize', (await shown('tokens')).manifest.key, 'vocab.parquet'));
    expect(tokenizer.model.vocab).toEqual(Object.fromEntries(vocab.map((t, id) => [t, id])));
  });

  it('bad targets and outputs: exit 2, a clear message, nothing written', async () => {
    const out = join(dir, 'bad', 'out');
    const cases: [string[], RegExp][] = [
      [['nope', '--out', out], /no stage run "nope" in the pipeline/],
      [['scores', '--out', out], /names a run of stage evaluate .*export takes a train run/],
      [['gpt2', '--out', exported.llama], /is not empty \(5 entries\)/],
      [['gpt2', '--out', join(exported.llama, 'config.json')], /exists and is not a folder/],
      [['gpt2', '--out', out, '--format', 'onnx'], /Allowed choices are hf/],
      [['gpt2'], /required option '--out <dir>'/],
      [
        ['gpt2', '--out', out, '--step', '31'],
        /--step: gpt2 kept no checkpoint(s \(train's keep_checkpoints\)| at step 31)/,
      ],
      [['gpt2', '--out', out, '--step', '-1'], /--step <n>' argument '-1' is invalid/],
    ];
    for (const [args, message] of cases) {
      const res = await exportCli(...(args as [string, ...string[]]));
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr, args.join(' ')).toMatch(message);
      expect(res.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(existsSync(join(dir, 'bad'))).toBe(false);
    expect(readdirSync(join(dir, 'exported')).sort()).toEqual([...ARCHS].sort()); // no temporaries left
    // an empty folder is taken
    mkdirSync(out, { recursive: true });
    const ok = await exportCli('gpt2', '--out', out);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readdirSync(out)).toHaveLength(5);
    expect(readdirSync(dirname(out))).toEqual(['out']);
    // the vocabulary's tokenize run gone from the store: exit 2, naming it
    const tokens = join(store, 'tokenize', (await shown('tokens')).manifest.key);
    const gpt2Key = (await shown('gpt2')).manifest.key;
    renameSync(tokens, `${tokens}.away`);
    try {
      const res = await exportCli(gpt2Key.slice(0, 10), '--out', join(dir, 'bad', 'x'));
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/its vocabulary, tokenize run tokens \([0-9a-f]{12}\), is not in the store/);
      expect(existsSync(join(dir, 'bad', 'x'))).toBe(false);
    } finally {
      renameSync(`${tokens}.away`, tokens);
    }
    // damaged weights: exit 2, naming the file
    const weights = join((await shown('llama')).dir, 'weights.safetensors');
    const bytes = readFileSync(weights);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] ^= 1;
    writeFileSync(weights, flipped);
    try {
      const res = await exportCli('llama', '--out', join(dir, 'bad', 'y'));
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/train\/[0-9a-f]{12} is damaged \(corrupt: weights.safetensors \(bytes changed/);
      expect(existsSync(join(dir, 'bad', 'y'))).toBe(false);
    } finally {
      writeFileSync(weights, bytes);
    }
  });
});

/**
 * Adds a kept checkpoint of step 0 (the initial weights of the run's config) to a train entry as
 * the train stage keeps them (`keep_checkpoints`: the weights only, in weights.safetensors' format,
 * listed in the manifest), for a train stage without that knob. @returns a function that undoes it.
 */
async function addStep0Checkpoint(entryDir: string): Promise<() => void> {
  const manifestFile = join(entryDir, 'manifest.json');
  const manifestText = readFileSync(manifestFile, 'utf8');
  const manifest = JSON.parse(manifestText) as Manifest;
  await initBackend('wasm');
  const trained = modelFromSafetensors(readFileSync(join(entryDir, WEIGHTS_FILE)));
  const fresh = createModel(trained.config, makeRng(0));
  trained.dispose();
  const bytes = await modelToSafetensors(fresh);
  fresh.dispose();
  const name = keptCheckpointFile(0);
  mkdirSync(dirname(join(entryDir, name)));
  writeFileSync(join(entryDir, name), bytes);
  const hash = sha256(bytes);
  const outputs = [
    ...manifest.outputs,
    { name, kind: 'file' as const, content_hash: hash, bytes: bytes.length, sha256: hash },
  ];
  const content = contentHash(outputs.map((o) => ({ name: o.name, hash: o.content_hash })));
  writeFileSync(manifestFile, JSON.stringify({ ...manifest, outputs, content_hash: content }));
  return () => {
    writeFileSync(manifestFile, manifestText);
    rmSync(dirname(join(entryDir, name)), { recursive: true });
  };
}

describe('grokpipe export --step: a kept checkpoint', () => {
  it('exports checkpoints/step-<7 digits>.safetensors instead of the final weights; names the kept steps otherwise', async () => {
    const source = await shown('gpt2');
    const outputs = (JSON.parse(readFileSync(join(source.dir, 'manifest.json'), 'utf8')) as Manifest).outputs;
    const kept = outputs.flatMap((o) => keptCheckpointStep(o.name) ?? []);
    // the train stage keeps checkpoints by itself where it has keep_checkpoints; else one is added
    const undo = kept.length === 0 ? await addStep0Checkpoint(source.dir) : () => undefined;
    const step = kept.length === 0 ? 0 : Math.min(...kept);
    try {
      const checkpoint = readFileSync(join(source.dir, keptCheckpointFile(step)));
      const out = join(dir, 'exported-step');
      const res = await exportCli('gpt2', '--out', out, '--step', String(step));
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(`(gpt2, step ${step}) to `);
      const tensors = (b: Uint8Array) =>
        [...decodeSafetensors(b).tensors.values()].map((t) => Array.from(t.data as Float32Array));
      const exportedTensors = tensors(readFileSync(join(out, 'model.safetensors')));
      expect(exportedTensors).toEqual(tensors(checkpoint));
      expect(exportedTensors).not.toEqual(tensors(readFileSync(join(source.dir, WEIGHTS_FILE))));
      const missing = await exportCli('gpt2', '--out', join(dir, 'exported-step31'), '--step', '31');
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(
        new RegExp(`--step: gpt2 kept no checkpoint at step 31 \\(kept: (\\d+, )*${step}(, \\d+)*\\)`),
      );
      expect(existsSync(join(dir, 'exported-step31'))).toBe(false);
    } finally {
      undo();
    }
  });
});

describe('the pieces', () => {
  it('hfTokenizerFiles: every token a word by its id, <pad> and </a> special; bad vocabularies refused', () => {
    const tokens = buildVocabulary({ entities: 3, attributes: 2, values: 2 }, 'shared').tokens;
    const files = hfTokenizerFiles(tokens, 5);
    const json = files['tokenizer.json'] as { model: { vocab: Record<string, number>; unk_token: string } };
    expect(Object.entries(json.model.vocab)).toEqual(tokens.map((t, id) => [t, id]));
    expect(json.model.unk_token).toBe('<pad>');
    expect(files['special_tokens_map.json']).toEqual({ pad_token: '<pad>', eos_token: '</a>', unk_token: '<pad>' });
    expect(files['tokenizer_config.json']).toMatchObject({ model_max_length: 5, padding_side: 'right' });
    expect(() => hfTokenizerFiles([...tokens, '<e 9>'], 5)).toThrow(/holds whitespace/);
    expect(() => hfTokenizerFiles([...tokens, '<q>'], 5)).toThrow(/appears twice \(ids 1, \d+\)/);
    expect(() => hfTokenizerFiles(tokens.slice(1), 5)).toThrow(/<pad> at id 0/);
  });

  it('toHuggingFace: weights without a config, or with a parameter the mapping does not know, are refused', () => {
    const t = { dtype: 'F32' as const, shape: [1], data: new Float32Array(1) };
    const ids = { pad: 0, bos: null, eos: 3 };
    expect(() => toHuggingFace(encodeSafetensors([['x', t]], { format: 'pt' }), ids)).toThrow(
      /no grokpipe.model_config/,
    );
    const config = { arch: 'rwkv', n_layers: 1, d_model: 4, vocab_size: 9, seq_len: 5, d_mlp: 16 };
    const stray = encodeSafetensors([['blocks.0.att.oops', t]], { [CONFIG_METADATA_KEY]: JSON.stringify(config) });
    expect(() => toHuggingFace(stray, ids)).toThrow(/rwkv: unexpected parameter blocks.0.att.oops/);
  });
});

/** One line of `python/check_hf_export.py`'s output. */
interface CheckReport {
  export_dir: string;
  model_class: string;
  n: number;
  ids_equal: boolean;
  max_abs_diff: number;
  argmax_equal: boolean;
  logit_scale: number;
}

/**
 * grokpipe's side of the check for `arch`: ${FACTS} test facts evenly spaced over the test set
 * (every test type, atomic prompts of 2 tokens and inferred of 5), their prompts, token ids,
 * answer positions and answer logits (`answerLogits` of the stored weights); written to a file.
 */
async function writeCases(arch: string): Promise<string> {
  const tokensDir = join(store, 'tokenize', (await shown('tokens')).manifest.key);
  const vocab = await readVocabFile(join(tokensDir, 'vocab.parquet'));
  const test = tableToExamples(await readTable(join(tokensDir, 'test.parquet')), 'test.parquet');
  expect(test.n).toBeGreaterThanOrEqual(FACTS);
  const rows = Array.from({ length: FACTS }, (_, i) => Math.floor((i * test.n) / FACTS));
  const L = test.seqLen;
  const tokens = rows.map((r) => Array.from(test.tokens.subarray(r * L, (r + 1) * L)));
  const positions = rows.map((r) => test.positions[r]);
  expect(new Set(positions)).toEqual(new Set([1, 4]));
  const model = modelFromSafetensors(readFileSync(join((await shown(arch)).dir, 'weights.safetensors')));
  const logits = tf.tidy(() =>
    model.answerLogits(tf.tensor2d(tokens, [FACTS, L], 'int32'), tf.tensor1d(positions, 'int32')).arraySync(),
  );
  model.dispose();
  const ids = tokens.map((t, i) => t.slice(0, positions[i] + 1));
  const cases = { prompts: ids.map((t) => t.map((id) => vocab[id]).join(' ')), token_ids: ids, positions, logits };
  return writeFileIn(dir, `cases-${arch}.json`, JSON.stringify(cases));
}

describe.skipIf(missing !== null && !REQUIRE)('transformers loads the export: same token ids, same logits', () => {
  const reports: Record<string, CheckReport> = {};

  beforeAll(async () => {
    if (missing) throw new Error(`GROKPIPE_REQUIRE_PYTHON=1 but ${missing}`);
    await initBackend('wasm');
    const pairs: string[] = [];
    for (const arch of ARCHS) pairs.push(exported[arch], await writeCases(arch));
    // one Python process for the four folders: importing torch and transformers is most of its time
    const res = await execa(PYTHON, [join(ROOT, 'python', 'check_hf_export.py'), ...pairs], { reject: false });
    for (const line of res.stdout.split('\n').filter(Boolean)) {
      const report = JSON.parse(line) as CheckReport;
      reports[ARCHS.find((a) => exported[a] === report.export_dir)!] = report;
    }
    expect(Object.keys(reports).sort(), `${res.stdout}\n${res.stderr}`).toEqual([...ARCHS].sort());
    expect(res.exitCode, `${res.stdout}\n${res.stderr}`).toBe(0);
  });

  it.each(ARCHS)(`%s: ${FACTS} test facts, tokenizer ids and answer-position logits equal to 1e-4`, (arch) => {
    const report = reports[arch];
    expect(report.n).toBe(FACTS);
    expect(report.ids_equal).toBe(true);
    expect(report.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(report.argmax_equal).toBe(true);
    expect(report.logit_scale).toBeGreaterThan(0.1); // trained logits, not all near zero
  });
});
