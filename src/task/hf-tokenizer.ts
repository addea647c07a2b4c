/**
 * The task's vocabulary as a Hugging Face tokenizer (`grokpipe export --format hf`): a `tokenizers`
 * WordLevel model over the token strings by id, after a `WhitespaceSplit` pre-tokenizer (split on
 * whitespace only: `Whitespace` would cut `<e_5>` into `<`, `e_5`, `>`), no normalizer, no added
 * BOS/EOS. So a prompt written as grokpipe writes inputs, tokens joined by single spaces
 * (`<attr_0> <q> <e_5> <mask> <e_7>`, the `input` column of evaluate's predictions), encodes to
 * grokpipe's ids, and `decode` joins tokens with spaces again. The vocabulary has no unknown
 * token, so a word outside it encodes as `<pad>` (id 0; `unk_token` is `<pad>`): an `unk_token`
 * WordLevel does not hold would make every unknown word an error, and tools that probe a
 * tokenizer with text of their own (TransformerLens encodes `"a"` to see whether a BOS is added)
 * would fail on it. Formats: `tokenizers`' `tokenizer.json` (version 1.0), transformers'
 * `tokenizer_config.json` and `special_tokens_map.json` for `PreTrainedTokenizerFast`.
 */
import { END_ID, PAD_ID } from './vocab.js';

/** The three files of a transformers tokenizer folder, as JSON values. */
export interface HfTokenizerFiles {
  readonly 'tokenizer.json': unknown;
  readonly 'tokenizer_config.json': unknown;
  readonly 'special_tokens_map.json': unknown;
}

/**
 * The tokenizer files of a vocabulary: special tokens `<pad>` (padding, as grokpipe right-pads
 * inputs; also what an unknown word encodes to) and `</a>` (end of answer, transformers'
 * `eos_token`), the other tokens ordinary words.
 * @param tokens token string of each id (`vocab.parquet`'s `token` column, by ascending `id`).
 * @param seqLen the model's longest input (`model_max_length`).
 * @throws RangeError when a token is empty, holds whitespace, repeats, or `<pad>`/`</a>` are not at
 *   their ids.
 */
export function hfTokenizerFiles(tokens: readonly string[], seqLen: number): HfTokenizerFiles {
  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => {
    if (t === '' || /\s/.test(t)) throw new RangeError(`token ${id} ${JSON.stringify(t)} is empty or holds whitespace`);
    if (Object.hasOwn(vocab, t))
      throw new RangeError(`token ${JSON.stringify(t)} appears twice (ids ${vocab[t]}, ${id})`);
    vocab[t] = id;
  });
  if (tokens[PAD_ID] !== '<pad>' || tokens[END_ID] !== '</a>')
    throw new RangeError(`expected <pad> at id ${PAD_ID} and </a> at id ${END_ID}`);
  const pad = tokens[PAD_ID];
  const eos = tokens[END_ID];
  const added = (id: number) => ({
    id,
    content: tokens[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const specials = [PAD_ID, END_ID].sort((a, b) => a - b);
  return {
    'tokenizer.json': {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: specials.map(added),
      normalizer: null,
      pre_tokenizer: { type: 'WhitespaceSplit' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab, unk_token: pad },
    },
    'tokenizer_config.json': {
      tokenizer_class: 'PreTrainedTokenizerFast',
      added_tokens_decoder: Object.fromEntries(
        specials.map((id) => {
          const { id: _id, ...rest } = added(id);
          return [String(id), rest];
        }),
      ),
      pad_token: pad,
      eos_token: eos,
      unk_token: pad,
      model_max_length: seqLen,
      padding_side: 'right',
      clean_up_tokenization_spaces: false,
      model_input_names: ['input_ids', 'attention_mask'],
    },
    'special_tokens_map.json': { pad_token: pad, eos_token: eos, unk_token: pad },
  };
}
