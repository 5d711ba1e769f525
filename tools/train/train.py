"""Trains shakespeare-llama, a small Llama-architecture model, on Tiny Shakespeare (CPU, torch).

    npx tsx tools/train/prepare.ts          # tokenizer + token ids (tools/train/out/)
    nice -n 19 /usr/bin/python3 tools/train/train.py --minutes 70 > tools/train/train-log.txt
    /usr/bin/python3 tools/train/plot.py    # loss curve PNG from the CSV

The model is written by hand with the exact conventions of Hugging Face's LlamaForCausalLM
(RMSNorm, rotate-half RoPE, SiLU-gated MLP, GQA by repeating kv heads, tied embeddings), so the
exported model.safetensors loads in transformers and in our engine unchanged.

The learning rate follows a cosine over the wall-clock budget, not over a step count: the machine
is shared, so the step rate is unknown in advance, and the run must end on time regardless.
Every evaluation that improves validation loss exports the model, so an early stop still leaves
a usable model in public/models/.
"""
import argparse
import csv
import json
import math
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..'))
OUT = os.path.join(HERE, 'out')
MODEL_DIR = os.path.join(ROOT, 'public', 'models', 'shakespeare-llama')


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--minutes', type=float, default=70.0, help='wall-clock training budget')
    p.add_argument('--hidden', type=int, default=192)
    p.add_argument('--layers', type=int, default=4)
    p.add_argument('--heads', type=int, default=3)
    p.add_argument('--kv-heads', type=int, default=1)
    p.add_argument('--intermediate', type=int, default=512)
    p.add_argument('--context', type=int, default=256, help='training sequence length (BOS included)')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--min-lr', type=float, default=1e-4)
    p.add_argument('--warmup', type=int, default=50, help='warmup steps')
    p.add_argument('--weight-decay', type=float, default=0.1)
    p.add_argument('--dropout', type=float, default=0.05)
    p.add_argument('--eval-every', type=float, default=480.0, help='seconds between evaluations')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=1337)
    p.add_argument('--csv', default=os.path.join(HERE, 'loss.csv'))
    p.add_argument('--no-export', action='store_true', help='pilot run: measure, write nothing')
    p.add_argument('--init', help='continue from this model.safetensors (a previous run\'s export)')
    p.add_argument('--start-tokens', type=int, default=0, help='tokens already trained (--init), for the log')
    return p.parse_args()


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rope_tables(head_dim, length, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)  # HF pairs element i with i + head_dim/2
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        hd = a.hidden // a.heads
        self.heads, self.kv_heads, self.hd = a.heads, a.kv_heads, hd
        self.input_layernorm = RMSNorm(a.hidden, 1e-5)
        self.q_proj = nn.Linear(a.hidden, a.heads * hd, bias=False)
        self.k_proj = nn.Linear(a.hidden, a.kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(a.hidden, a.kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(a.heads * hd, a.hidden, bias=False)
        self.post_attention_layernorm = RMSNorm(a.hidden, 1e-5)
        self.gate_proj = nn.Linear(a.hidden, a.intermediate, bias=False)
        self.up_proj = nn.Linear(a.hidden, a.intermediate, bias=False)
        self.down_proj = nn.Linear(a.intermediate, a.hidden, bias=False)
        self.dropout = a.dropout
        causal = torch.full((a.context, a.context), float('-inf')).triu(1)
        self.register_buffer('mask', causal, persistent=False)

    def attention(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads  # query head h reads kv head h // rep, as HF's repeat_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        # torch 1.13 (Debian's) has no scaled_dot_product_attention: spelled out.
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        # No dropout on the probabilities: on CPU the T x T tensors dominate the step time.
        y = (scores + self.mask[:t, :t]).softmax(-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))

    def forward(self, x, cos, sin):
        drop = self.dropout if self.training else 0.0
        x = x + F.dropout(self.attention(self.input_layernorm(x), cos, sin), drop, self.training)
        h = self.post_attention_layernorm(x)
        m = self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))
        return x + F.dropout(m, drop, self.training)


class Llama(nn.Module):
    def __init__(self, a, vocab):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, a.hidden)
        self.layers = nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.norm = RMSNorm(a.hidden, 1e-5)
        cos, sin = rope_tables(a.hidden // a.heads, a.context, 10000.0)
        self.register_buffer('cos', cos, persistent=False)
        self.register_buffer('sin', sin, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # Residual outputs start smaller so the stream's variance does not grow with depth.
                std = 0.02 / math.sqrt(2 * a.layers) if name.endswith(('o_proj.weight', 'down_proj.weight')) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.embed_tokens(ids)
        cos, sin = self.cos[:t], self.sin[:t]
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x) @ self.embed_tokens.weight.t()  # tied embeddings


def hf_state(model):
    """Tensors under Hugging Face's names (no lm_head: tie_word_embeddings)."""
    out = {'model.embed_tokens.weight': model.embed_tokens.weight, 'model.norm.weight': model.norm.weight}
    for i, layer in enumerate(model.layers):
        pre = f'model.layers.{i}.'
        out[pre + 'input_layernorm.weight'] = layer.input_layernorm.weight
        out[pre + 'post_attention_layernorm.weight'] = layer.post_attention_layernorm.weight
        for name in ('q_proj', 'k_proj', 'v_proj', 'o_proj'):
            out[pre + f'self_attn.{name}.weight'] = getattr(layer, name).weight
        for name in ('gate_proj', 'up_proj', 'down_proj'):
            out[pre + f'mlp.{name}.weight'] = getattr(layer, name).weight
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float16).contiguous().numpy().tobytes()
        header[name] = {'dtype': 'F16', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header['__metadata__'] = {'format': 'pt'}
    text = json.dumps(header, separators=(',', ':'))
    text += ' ' * ((8 - len(text) % 8) % 8)  # data starts 8-byte aligned
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text.encode())
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)  # an interrupted run never leaves a torn file


def export(model, a, meta):
    os.makedirs(MODEL_DIR, exist_ok=True)
    config = {
        'architectures': ['LlamaForCausalLM'],
        'attention_bias': False,
        'attention_dropout': 0.0,
        'bos_token_id': meta['bos_token_id'],
        'eos_token_id': [meta['end_of_text_id'], meta['eot_id']],
        'head_dim': a.hidden // a.heads,
        'hidden_act': 'silu',
        'hidden_size': a.hidden,
        'initializer_range': 0.02,
        'intermediate_size': a.intermediate,
        'max_position_embeddings': a.context,
        'mlp_bias': False,
        'model_type': 'llama',
        'num_attention_heads': a.heads,
        'num_hidden_layers': a.layers,
        'num_key_value_heads': a.kv_heads,
        'pretraining_tp': 1,
        'rms_norm_eps': 1e-5,
        'rope_scaling': None,
        'rope_theta': 10000.0,
        'tie_word_embeddings': True,
        'torch_dtype': 'float16',
        'transformers_version': '4.51.0',
        'use_cache': True,
        'vocab_size': meta['vocab_size'],
    }
    generation = {
        'bos_token_id': meta['bos_token_id'],
        'eos_token_id': [meta['end_of_text_id'], meta['eot_id']],
        'pad_token_id': meta['end_of_text_id'],
        'transformers_version': '4.51.0',
    }
    for name, value in (('config.json', config), ('generation_config.json', generation)):
        with open(os.path.join(MODEL_DIR, name), 'w') as f:
            f.write(json.dumps(value, indent=2) + '\n')
    write_safetensors(os.path.join(MODEL_DIR, 'model.safetensors'), hf_state(model))


def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        assert entry['dtype'] == 'F16', entry['dtype']
        a, b = entry['data_offsets']
        raw = torch.frombuffer(bytearray(data[8 + n + a:8 + n + b]), dtype=torch.float16)
        out[name] = raw.to(torch.float32).reshape(entry['shape'])
    return out


def load_init(model, path):
    tensors = read_safetensors(path)
    with torch.no_grad():
        for name, param in hf_state(model).items():
            param.copy_(tensors[name])


def load_ids(name):
    with open(os.path.join(OUT, name), 'rb') as f:
        data = f.read()
    return torch.tensor(struct.unpack(f'<{len(data) // 2}H', data), dtype=torch.long)


def speech_starts(train, meta):
    """Positions just after a token that ends in a blank line: where a speaker's name begins."""
    with open(os.path.join(MODEL_DIR, 'tokenizer.json')) as f:
        vocab = json.load(f)['model']['vocab']
    ends = [i for tok, i in vocab.items() if tok.endswith('ĊĊ')]  # 'Ċ' is byte \n in GPT-2's map
    mask = torch.isin(train[:-1], torch.tensor(ends))
    return (mask.nonzero().squeeze(1) + 1)


def batch(train, starts, a, gen):
    """Rows of `context` tokens: half start at a speech, half anywhere; half of each begin with BOS.

    The engine encodes a plain-text prompt without BOS and a chat prompt with it, so the model
    must be at home with both openings.
    """
    n = a.context
    limit = len(train) - n - 1
    anywhere = torch.randint(0, limit, (a.batch // 2,), generator=gen)
    pick = starts[starts < limit]
    speech = pick[torch.randint(0, len(pick), (a.batch - a.batch // 2,), generator=gen)]
    chunks = torch.stack([train[s:s + n + 1] for s in torch.cat([anywhere, speech]).tolist()])
    with_bos = torch.rand(a.batch, generator=gen) < 0.5
    bos = torch.full((a.batch, 1), BOS, dtype=torch.long)
    x = torch.where(with_bos[:, None], torch.cat([bos, chunks[:, :n - 1]], dim=1), chunks[:, :n])
    y = torch.where(with_bos[:, None], chunks[:, :n], chunks[:, 1:])
    return x, y


@torch.no_grad()
def evaluate(model, val, a, meta):
    """Sum of NLL over every val token (windows of BOS + context-1 tokens) -> nats/token, bits/char."""
    model.eval()
    n = a.context - 1
    total, count = 0.0, 0
    for s in range(0, len(val), n * 8):
        xs, ys = [], []
        for w in range(s, min(s + n * 8, len(val)), n):
            y = val[w:w + n]
            xs.append(torch.cat([torch.tensor([BOS]), y[:-1]]))
            ys.append(y)
        same = [i for i in range(len(xs)) if len(xs[i]) == n]
        if same:
            logits = model(torch.stack([xs[i] for i in same]))
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.stack([ys[i] for i in same]).reshape(-1), reduction='sum').item()
            count += len(same) * n
        for i in range(len(xs)):
            if len(xs[i]) != n:
                logits = model(xs[i].unsqueeze(0))
                total += F.cross_entropy(logits[0], ys[i], reduction='sum').item()
                count += len(ys[i])
    model.train()
    assert count == len(val)
    return total / count, total / (math.log(2) * meta['val_chars'])


def lr_at(a, step, frac):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * min(frac, 1.0)))


def main():
    global BOS
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(os.path.join(OUT, 'meta.json')) as f:
        meta = json.load(f)
    BOS = meta['bos_token_id']
    train, val = load_ids('train.u16'), load_ids('val.u16')
    starts = speech_starts(train, meta)
    model = Llama(a, meta['vocab_size'])
    if a.init:
        load_init(model, a.init)
    params = sum(p.numel() for p in model.parameters())
    print(f'args {vars(a)}', flush=True)
    print(f'params {params} ({params * 2 / 1e6:.2f} MB in F16); train {len(train)} tokens, val {len(val)} tokens, '
          f'{len(starts)} speech starts', flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.weight_decay}, {'params': other, 'weight_decay': 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(a.seed)
    chars_per_token = meta['train_chars'] / meta['train_tokens']
    rows = []
    budget = a.minutes * 60
    t0 = time.time()
    last_eval, best, step, acc, acc_n = t0, float('inf'), 0, 0.0, 0
    while True:
        elapsed = time.time() - t0
        done = elapsed >= budget
        if done or time.time() - last_eval >= a.eval_every:
            val_nats, val_bpc = evaluate(model, val, a, meta)
            train_nats = acc / max(acc_n, 1)
            train_bpc = train_nats / (math.log(2) * chars_per_token)
            row = {'step': step, 'seconds': round(elapsed, 1), 'tokens': a.start_tokens + step * a.batch * a.context,
                   'lr': round(lr_at(a, step, elapsed / budget), 6), 'train_nats_per_token': round(train_nats, 4),
                   'train_bits_per_char': round(train_bpc, 4), 'val_nats_per_token': round(val_nats, 4),
                   'val_bits_per_char': round(val_bpc, 4)}
            rows.append(row)
            print('eval ' + json.dumps(row), flush=True)
            if not a.no_export:
                with open(a.csv, 'w', newline='') as f:
                    w = csv.DictWriter(f, fieldnames=list(row))
                    w.writeheader()
                    w.writerows(rows)
                if val_bpc < best:
                    best = val_bpc
                    export(model, a, meta)
                    print(f'exported (val {val_bpc:.4f} bits/char)', flush=True)
            acc, acc_n = 0.0, 0
            last_eval = time.time()
            if done:
                break
        lr = lr_at(a, step, (time.time() - t0) / budget)
        for g in opt.param_groups:
            g['lr'] = lr
        x, y = batch(train, starts, a, gen)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        acc += loss.item()
        acc_n += 1
        step += 1
        if step % 20 == 0:
            tps = step * a.batch * a.context / (time.time() - t0)
            print(f'step {step} loss {loss.item():.4f} lr {lr:.2e} {tps:.0f} tok/s', flush=True)
    print(f'done: {step} steps in {time.time() - t0:.0f} s; best val {best:.4f} bits/char', flush=True)


if __name__ == '__main__':
    main()
