/**
 * Chat templates of the fixture families, as their real models ship them (Jinja, rendered by
 * @huggingface/jinja). Kept verbatim where possible so that prompts built for the fixtures have
 * exactly the shape of the real models' prompts.
 */

/** Meta-Llama-3-8B-Instruct's template: BOS once, header tokens, content trimmed, <|eot_id|>. */
export const LLAMA3_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/** Qwen2-Instruct's ChatML template, with its default system message. */
export const QWEN2_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/**
 * A reduced Qwen3 template: ChatML without a default system message; earlier assistant turns
 * lose their reasoning (text up to </think>); `enable_thinking=false` pre-fills an empty think
 * block, as Qwen3's own template does. Tool calls are left out.
 */
export const QWEN3_CHAT_TEMPLATE = [
  '{%- for message in messages %}',
  "{%- if message['role'] == 'assistant' %}",
  "{%- set content = message['content'] %}",
  "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}",
  "{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}",
  '{%- else %}',
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}",
  '{%- endif %}',
  '{%- endfor %}',
  '{%- if add_generation_prompt %}',
  "{{- '<|im_start|>assistant\\n' }}",
  "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}",
  '{%- endif %}',
].join('\n');

/**
 * The trained shakespeare-llama's template. The model only ever saw play text, so a chat is
 * rendered as play text: each message is a speech headed by its speaker's name in capitals and
 * a colon. The role is the speaker ("ROMEO", "juliet"); `user` and `assistant` stand for two
 * fixed speakers so that plain chat clients also get a dialogue; `system` is a bare stage line.
 */
export const SHAKESPEARE_CHAT_TEMPLATE = [
  '{{- bos_token }}',
  '{%- for message in messages %}',
  "{%- if message['role'] == 'system' %}{{- message['content'] | trim + '\\n\\n' }}",
  "{%- else %}",
  "{%- if message['role'] == 'user' %}{%- set speaker = 'ROMEO' %}",
  "{%- elif message['role'] == 'assistant' %}{%- set speaker = 'JULIET' %}",
  "{%- else %}{%- set speaker = message['role'] | upper %}{%- endif %}",
  "{{- speaker + ':\\n' + message['content'] | trim + '\\n\\n' }}",
  '{%- endif %}',
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{- 'JULIET:\\n' }}{%- endif %}",
].join('\n');
