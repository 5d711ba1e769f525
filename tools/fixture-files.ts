/**
 * The files of one fixture folder, as bytes. Everything is a pure function of the spec and the
 * trained BPE, so two runs produce identical bytes.
 */
import { serializeSafetensors } from '../src/adapters/safetensors/index.ts';
import type { BpeModel } from './bpe.ts';
import { BPE_VOCAB_SIZE, MAX_POSITIONS, configJson, generationConfigJson, type FixtureSpec } from './fixture-specs.ts';
import { fixtureTensors } from './fixture-weights.ts';
import { addedTokensDecoder, buildTokenizerJson, type Json } from './tokenizer-json.ts';

export const FIXTURE_FILES = [
  'README.md',
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
] as const;

export type FixtureFileName = (typeof FIXTURE_FILES)[number];

const encoder = new TextEncoder();

function jsonBytes(value: Json): Uint8Array {
  return encoder.encode(JSON.stringify(value, null, 2) + '\n');
}

/**
 * tokenizer_config.json. `tokenizer_class` is what transformers.js's AutoTokenizer dispatches on:
 * Llama 3 ships `PreTrainedTokenizerFast` (the "Fast" suffix is stripped, giving the base class),
 * Qwen ships `Qwen2Tokenizer`. `clean_up_tokenization_spaces: false` keeps decode exact.
 */
function tokenizerConfigJson(spec: FixtureSpec): Json {
  const chatml = spec.bosToken === null;
  const config: Record<string, Json> = {
    add_bos_token: spec.bosToken !== null,
    add_eos_token: false,
    ...(chatml ? { add_prefix_space: false } : {}),
    added_tokens_decoder: addedTokensDecoder(BPE_VOCAB_SIZE, spec.addedTokens),
    ...(chatml ? { additional_special_tokens: ['<|im_start|>', '<|im_end|>'] } : {}),
    bos_token: spec.bosToken,
    chat_template: spec.chatTemplate,
    clean_up_tokenization_spaces: false,
    eos_token: spec.eosToken,
    ...(chatml ? { errors: 'replace' } : {}),
    model_input_names: ['input_ids', 'attention_mask'],
    model_max_length: MAX_POSITIONS,
    pad_token: spec.padToken,
    ...(chatml ? { split_special_tokens: false } : {}),
    tokenizer_class: spec.tokenizerClass,
    unk_token: null,
  };
  return config;
}

function readme(spec: FixtureSpec): string {
  return [
    `# ${spec.id}`,
    '',
    `A generated test fixture: a tiny ${spec.architecture} with random weights (${spec.dtype}) and a`,
    '512-token byte-level BPE trained on Tiny Shakespeare, plus its special tokens. It produces',
    'noise, not text. It exists so that tests and the offline demo never download a model.',
    '',
    'Do not edit these files by hand. Regenerate every fixture (deterministically, from a fixed',
    'seed) with:',
    '',
    '```sh',
    'npm run fixtures   # = npx tsx tools/make-fixtures.ts',
    '```',
    '',
  ].join('\n');
}

/** Every file of one fixture folder, keyed by file name. */
export function fixtureFiles(spec: FixtureSpec, bpe: BpeModel): Record<FixtureFileName, Uint8Array> {
  const config = configJson(spec);
  const tokenizer = buildTokenizerJson({
    bpe,
    addedTokens: spec.addedTokens,
    splitRegex: spec.splitRegex,
    bosToken: spec.bosToken,
    ignoreMerges: spec.ignoreMerges,
  });
  const weights = serializeSafetensors(fixtureTensors(spec.id, config, spec.dtype), { format: 'pt' });
  return {
    'README.md': encoder.encode(readme(spec)),
    'config.json': jsonBytes(config),
    'generation_config.json': jsonBytes(generationConfigJson(spec)),
    'model.safetensors': weights,
    'tokenizer.json': jsonBytes(tokenizer),
    'tokenizer_config.json': jsonBytes(tokenizerConfigJson(spec)),
  };
}

/** public/models/index.json: what the app can offer without a download. */
export function indexJson(specs: readonly FixtureSpec[]): Uint8Array {
  const models = specs.map((spec) => ({
    id: spec.id,
    architecture: spec.architecture,
    modelType: String(spec.archConfig['model_type']),
    dtype: spec.dtype,
    path: `${spec.id}/`,
  }));
  return jsonBytes({ generatedBy: 'tools/make-fixtures.ts', models });
}
