/** Tokenizer adapter: TokenizerPort over @huggingface/transformers. */
export { HfTokenizer, type GenerationConfigLike, type HfTokenizerLoadOptions } from './hf-tokenizer.ts';
