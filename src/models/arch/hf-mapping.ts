/**
 * What an architecture declares to be exported to Hugging Face `transformers` (`hf.ts` lists one
 * mapping per architecture, `<arch>-hf.ts`): the class that runs the same network, its config
 * fields and its parameter names; or why no class does.
 */

/** Token ids that transformers' config names (`pad_token_id`, `eos_token_id`; null: none). */
export interface HfTokenIds {
  readonly pad: number | null;
  readonly bos: number | null;
  readonly eos: number | null;
}

/** How one architecture maps onto a transformers class. */
export interface HfMapping<C> {
  /** The causal-LM class, `config.json`'s `architectures[0]` (`GPT2LMHeadModel`). */
  readonly architecture: string;
  /** `config.json`'s `model_type` (`gpt2`), which picks the config class (`GPT2Config`). */
  readonly modelType: string;
  /** The class's own config fields for `c` (sizes, norms, activation, tying), in its names. */
  config(c: C): Record<string, unknown>;
  /**
   * The state-dict name of the grokpipe parameter `name`.
   * @throws Error for a name the mapping does not know.
   */
  tensorName(name: string): string;
}

/** An architecture that no transformers class runs exactly, and why. */
export interface HfUnsupported {
  readonly unsupported: string;
}
