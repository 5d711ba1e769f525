/**
 * Step 1 of training the shakespeare-llama model: trains the byte-level BPE on the training
 * split, writes the tokenizer files into the model folder, and pre-tokenizes both splits with
 * the very tokenizer the engine will load (transformers.js), so training and inference agree.
 *
 *   npx tsx tools/train/prepare.ts
 *
 * Outputs: public/models/shakespeare-llama/{tokenizer.json,tokenizer_config.json},
 * tools/train/out/{train,val}.u16 (token ids, little-endian uint16), val.txt and meta.json.
 * tools/train/train.py then trains the model and writes the remaining files.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { LLAMA3_SPLIT_REGEX, trainBpe } from '../bpe.ts';
import { SHAKESPEARE_CHAT_TEMPLATE } from '../chat-templates.ts';
import { addedTokensDecoder, buildTokenizerJson, type AddedTokenSpec, type Json } from '../tokenizer-json.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
export const MODEL_ID = 'shakespeare-llama';
const MODEL_DIR = join(ROOT, 'public', 'models', MODEL_ID);
const OUT_DIR = join(HERE, 'out');
const CORPUS = join(ROOT, 'tools', 'data', 'tinyshakespeare.txt');

/** BPE tokens (256 bytes + merges); with the 5 specials the vocabulary is exactly 2048. */
const BPE_SIZE = 2043;
const CONTEXT = 512;

const special = (content: string): AddedTokenSpec => ({ content, special: true });
const ADDED: readonly AddedTokenSpec[] = [
  special('<|begin_of_text|>'),
  special('<|end_of_text|>'),
  special('<|start_header_id|>'),
  special('<|end_header_id|>'),
  special('<|eot_id|>'),
];

function jsonBytes(value: Json): string {
  return JSON.stringify(value, null, 2) + '\n';
}

function tokenizerConfig(): Json {
  return {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder(BPE_SIZE, ADDED),
    bos_token: '<|begin_of_text|>',
    chat_template: SHAKESPEARE_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|end_of_text|>',
    model_input_names: ['input_ids', 'attention_mask'],
    model_max_length: CONTEXT,
    pad_token: '<|end_of_text|>',
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: null,
  };
}

function writeU16(path: string, ids: readonly number[]): void {
  const out = new Uint16Array(ids);
  writeFileSync(path, new Uint8Array(out.buffer));
}

async function main(): Promise<void> {
  const text = readFileSync(CORPUS, 'utf8');
  // The split is by characters, as the issue states; the corpus is ASCII so chars = bytes.
  const cut = Math.floor(text.length * 0.9);
  const train = text.slice(0, cut);
  const val = text.slice(cut);
  let t0 = performance.now();
  const bpe = trainBpe(train, BPE_SIZE);
  console.log(`bpe: ${bpe.tokens.length} tokens, ${bpe.merges.length} merges in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  mkdirSync(MODEL_DIR, { recursive: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const tokenizer = buildTokenizerJson({
    bpe,
    addedTokens: ADDED,
    splitRegex: LLAMA3_SPLIT_REGEX,
    bosToken: '<|begin_of_text|>',
    ignoreMerges: true,
  });
  writeFileSync(join(MODEL_DIR, 'tokenizer.json'), jsonBytes(tokenizer));
  writeFileSync(join(MODEL_DIR, 'tokenizer_config.json'), jsonBytes(tokenizerConfig()));

  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = join(ROOT, 'public', 'models');
  const tok = await AutoTokenizer.from_pretrained(MODEL_ID);
  t0 = performance.now();
  const trainIds = tok.encode(train, { add_special_tokens: false });
  const valIds = tok.encode(val, { add_special_tokens: false });
  console.log(`encode: ${trainIds.length} + ${valIds.length} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // Decoding must give the text back exactly, or bits/char would be measured on other text.
  if (tok.decode(valIds, { clean_up_tokenization_spaces: false }) !== val) throw new Error('val split does not round-trip');
  writeU16(join(OUT_DIR, 'train.u16'), trainIds);
  writeU16(join(OUT_DIR, 'val.u16'), valIds);
  // The validation text itself, for `semantic eval --text tools/train/out/val.txt`.
  writeFileSync(join(OUT_DIR, 'val.txt'), val);
  const meta = {
    vocab_size: BPE_SIZE + ADDED.length,
    bos_token_id: BPE_SIZE,
    end_of_text_id: BPE_SIZE + 1,
    eot_id: BPE_SIZE + 4,
    context: CONTEXT,
    train_chars: train.length,
    val_chars: val.length,
    train_tokens: trainIds.length,
    val_tokens: valIds.length,
  };
  writeFileSync(join(OUT_DIR, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  console.log(meta);
}

await main();
