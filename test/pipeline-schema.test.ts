/**
 * `schemas/pipeline.schema.json` as an editor reads it: its generated part agrees with the stage
 * schemas (`scripts/pipeline-schema.mjs`), it compiles under Ajv's strict mode, a file with four
 * typos gets four errors, and yaml-language-server (the engine of VS Code's YAML extension) shows
 * each knob's description, default and allowed values, and accepts every pipeline of the repository.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Ajv as AjvType } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { expectedPipelineSchemaText, readStageSchemas } from '../scripts/pipeline-schema.mjs';
import { PIPELINE_SCHEMA_URL, toProblems } from '../src/engine/pipeline/validate.js';
import { formatPath } from '../src/engine/errors.js';
import { builtinStages } from '../src/stages/index.js';

const require = createRequire(import.meta.url);
const SCHEMA_FILE = fileURLToPath(PIPELINE_SCHEMA_URL);
const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object;

/** Ajv in strict mode (every strict check an error), reporting all errors with their data. */
function strictAjv(): AjvType {
  const { Ajv } = require('ajv') as { Ajv: new (options: object) => AjvType };
  return new Ajv({ strict: true, allErrors: true, verbose: true });
}

/** The four typos of the issue, one per stage, each where an editor should underline it. */
const TYPOS = `# yaml-language-server: $schema=schemas/pipeline.schema.json
stages:
  kb:
    uses: generate
    with: { entitys: 100 }
  facts:
    uses: split
    needs: [kb]
  tokens:
    uses: trian
    needs: [facts]
  model:
    uses: train
    needs: [tokens]
    with:
      max_step: 100
      model: { arch: gpt5, n_layers: 1 }
`;

/** Every pipeline file of the repository. */
function pipelineFiles(): string[] {
  const dir = new URL('../pipelines/', import.meta.url);
  const found: string[] = [];
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.yaml')) found.push(`${e.parentPath}/${e.name}`);
  }
  return found.sort();
}

describe('the pipeline schema', () => {
  it('its generated part is what scripts/pipeline-schema.mjs makes of the stage schemas', () => {
    expect(schema).toEqual(JSON.parse(expectedPipelineSchemaText()));
    // The stage schemas it is made of are those of the built-in stages, all of them.
    const files = Object.fromEntries(readStageSchemas());
    expect(Object.keys(files).sort()).toEqual(builtinStages.map((s) => s.name).sort());
    for (const stage of builtinStages) expect(stage.schema).toEqual(files[stage.name]);
  });

  it('compiles under Ajv strict mode, as does every stage schema', () => {
    expect(() => strictAjv().compile(schema)).not.toThrow();
    for (const stage of builtinStages) expect(() => strictAjv().compile(stage.schema)).not.toThrow();
  });

  it('accepts every pipeline of the repository, templates included', () => {
    const validate = strictAjv().compile(schema);
    for (const file of pipelineFiles()) {
      const ok = validate(parse(readFileSync(file, 'utf8')));
      expect(ok ? [] : toProblems(validate.errors), file).toEqual([]);
    }
  });

  it('finds each of four typos, once', () => {
    const validate = strictAjv().compile(schema);
    expect(validate(parse(TYPOS))).toBe(false);
    const problems = toProblems(validate.errors).map((p) => `${formatPath(p.path)}: ${p.message}`);
    expect(problems).toHaveLength(4);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^stages\.kb\.with\.entitys: unknown field \(allowed: entities, attributes/),
        expect.stringMatching(/^stages\.tokens\.uses: must be one of .*"train" \(got "trian"\)$/),
        expect.stringMatching(/^stages\.model\.with\.max_step: unknown field \(allowed: model, optimizer, max_steps/),
        'stages.model.with.model.arch: must be one of "gpt2", "llama", "rwkv", "mamba" (got "gpt5")',
      ]),
    );
  });

  it('reports a knob of the wrong type by its own type, not by the template it could also be', () => {
    const validate = strictAjv().compile(schema);
    validate(parse('stages:\n  m: { uses: train, with: { max_steps: lots, seed: "${{ matrix.seed }}" } }\n'));
    expect(toProblems(validate.errors).map((p) => p.message)).toEqual(['must be integer (got "lots")']);
  });
});

describe('yaml-language-server with the pipeline schema', () => {
  // The language service of the YAML extension of VS Code (and of other editors' YAML plugins).
  type Position = { line: number; character: number };
  type Service = {
    configure(settings: object): void;
    doValidation(doc: unknown, isKubernetes: boolean): Promise<{ message: string; range: { start: Position } }[]>;
    doHover(doc: unknown, position: Position): Promise<{ contents: { value: string } } | null>;
    doComplete(doc: unknown, position: Position, isKubernetes: boolean): Promise<{ items: CompletionItem[] }>;
  };
  type CompletionItem = { label: string; insertText?: string };
  const { getLanguageService } =
    require('yaml-language-server/out/server/src/languageservice/yamlLanguageService.js') as {
      getLanguageService(params: object): Service;
    };
  const { TextDocument } = require('vscode-languageserver-textdocument') as {
    TextDocument: { create(uri: string, language: string, version: number, text: string): unknown };
  };
  const service = getLanguageService({
    schemaRequestService: (uri: string) => Promise.resolve(readFileSync(new URL(uri), 'utf8')),
    workspaceContext: { resolveRelativePath: (rel: string, resource: string) => new URL(rel, resource).href },
  });
  const schemaUri = pathToFileURL(SCHEMA_FILE).href;
  service.configure({
    validate: true,
    hover: true,
    completion: true,
    schemas: [{ uri: schemaUri, fileMatch: ['*.yaml'] }],
  });
  let documents = 0;
  // A new URI per document: the service caches parsed documents by URI and version.
  const doc = (text: string, uri = `file:///virtual/p${documents++}.yaml`) => TextDocument.create(uri, 'yaml', 1, text);

  it('underlines the four typos, and nothing in the repository pipelines', async () => {
    // As a file at the repository root, where its `$schema=` modeline points.
    const diagnostics = await service.doValidation(doc(TYPOS, new URL('../typos.yaml', import.meta.url).href), false);
    expect(diagnostics.map((d) => d.range.start.line).sort((a, b) => a - b)).toEqual([4, 9, 15, 16]);
    for (const file of pipelineFiles()) {
      // Under their own URI, so that each file's `$schema=` modeline resolves as in an editor.
      const found = await service.doValidation(doc(readFileSync(file, 'utf8'), pathToFileURL(file).href), false);
      expect(
        found.map((d) => d.message),
        file,
      ).toEqual([]);
    }
  });

  it("shows a knob's description on hover, templated or not", async () => {
    const text =
      'stages:\n  m:\n    uses: train\n    with:\n      max_steps: "${{ matrix.n }}"\n      optimizer: { lr: 0.1 }\n';
    const steps = await service.doHover(doc(text), { line: 4, character: 8 });
    expect(steps?.contents.value).toContain('Optimizer steps in all.');
    const lr = await service.doHover(doc(text), { line: 5, character: 20 });
    expect(lr?.contents.value).toContain('Peak learning rate');
  });

  it('completes knobs with their defaults, per architecture, and enums', async () => {
    const labels = async (text: string, position: Position) =>
      (await service.doComplete(doc(text), position, false)).items.map((i) => `${i.label}=${i.insertText ?? ''}`);
    const optimizer = await labels('stages:\n  m:\n    uses: train\n    with:\n      optimizer:\n        l\n', {
      line: 5,
      character: 9,
    });
    expect(optimizer).toEqual(expect.arrayContaining(['lr=lr: ${1:0.001}', 'batch_size=batch_size: ${1:512}']));
    const llama = await labels(
      'stages:\n  m:\n    uses: train\n    with:\n      model:\n        arch: llama\n        r\n',
      {
        line: 6,
        character: 9,
      },
    );
    expect(llama).toEqual(expect.arrayContaining(['rope_base=rope_base: ${1:10000}']));
    const arch = await labels('stages:\n  m:\n    uses: train\n    with:\n      model: { arch: g }\n', {
      line: 4,
      character: 22,
    });
    expect(arch.map((l) => l.split('=')[0])).toEqual(expect.arrayContaining(['gpt2', 'llama', 'rwkv', 'mamba']));
    const uses = await labels('stages:\n  kb:\n    uses: g\n', { line: 2, character: 11 });
    expect(uses.map((l) => l.split('=')[0]).sort()).toEqual([
      'analyze',
      'evaluate',
      'generate',
      'probe',
      'split',
      'tokenize',
      'train',
    ]);
  });
});
