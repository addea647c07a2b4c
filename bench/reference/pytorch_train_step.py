"""PyTorch reference for `npm run bench -- train`: the time of one GPT-2 training step on the CPU.

    python3 bench/reference/pytorch_train_step.py [--threads 2] [--steps 5] [--warmup 2] [--models 2x128,4x256,8x768]

The same work as grokpipe's train bench: GPT-2 (pre-LayerNorm, GELU MLP of 4 d_model, learned
positions, tied unembedding), batch 512, 6 tokens, vocabulary 1,200, logits at the last position
only, cross-entropy, AdamW (weight decay 0.1), global-norm clipping at 1. Prints one JSON object per
model with the fields of `npm run bench -- train --json` (backend "pytorch"). A reference to measure
against, not part of grokpipe: it needs PyTorch (Debian: python3-torch; with libopenblas0-pthread
selected as libblas.so.3 for a fast BLAS).
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.ln_1 = nn.LayerNorm(d_model)
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        self.ln_2 = nn.LayerNorm(d_model)
        self.c_fc = nn.Linear(d_model, 4 * d_model)
        self.mlp_proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.n_heads)
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf')).softmax(-1)
        x = x + self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate='tanh'))


class GPT(nn.Module):
    def __init__(self, n_layers, d_model, n_heads, vocab, seq_len):
        super().__init__()
        self.wte = nn.Embedding(vocab, d_model)
        self.wpe = nn.Embedding(seq_len, d_model)
        self.h = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x[:, -1, :]) @ self.wte.weight.t()  # logits at the last position only


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--models', default='2x128x4,4x256x8,8x768x12', help='n_layers x d_model x n_heads, comma-separated')
    p.add_argument('--batch', type=int, default=512)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    vocab, seq = 1200, 6
    for spec in a.models.split(','):
        n_layers, d_model, n_heads = (int(s) for s in spec.split('x'))
        model = GPT(n_layers, d_model, n_heads, vocab, seq)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.98))
        idx = torch.randint(0, vocab, (a.batch, seq))
        tgt = torch.randint(0, vocab, (a.batch,))
        times = []
        for i in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(idx), tgt).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({
            'arch': 'gpt2', 'n_layers': n_layers, 'd_model': d_model, 'n_heads': n_heads, 'batch_size': a.batch,
            'seq_len': seq, 'vocab': vocab, 'backend': 'pytorch', 'threads': a.threads,
            'ms_per_step': round(statistics.median(times), 1), 'ms_min': round(min(times), 1), 'ms_max': round(max(times), 1),
            'torch': torch.__version__,
        }), flush=True)


if __name__ == '__main__':
    main()
