"""PyTorch reference for `npm run bench -- train`: the time of one GPT-2 training step on the CPU.

    python3 bench/reference/pytorch_train_step.py [--threads 2] [--steps 5] [--warmup 2] [--models 2x128x4,4x256x8]
                                                  [--batch 512] [--members 8]

The same work as grokpipe's train bench: GPT-2 (pre-LayerNorm, GELU MLP of 4 d_model, learned
positions, tied unembedding), batch 512, 6 tokens, vocabulary 1,200, logits at the last position
only, cross-entropy, AdamW (weight decay 0.1), global-norm clipping at 1. Prints one JSON object per
model with the fields of `npm run bench -- train --json` (backend "pytorch"; `cpu_ms_per_step`:
the median CPU time of this process a step). A reference to measure
against, not part of grokpipe: it needs PyTorch, either 2.x from PyPI (`pip install torch==2.13.0`,
the CPU build with MKL) or Debian's 1.13 (python3-torch; with libopenblas0-pthread selected as
libblas.so.3 for a fast BLAS).

`--members M` (M > 1) times M independent models of each size trained together, each on its own
batch, two ways, and prints both (field `ensemble`): `loop` (M models and M optimizers stepped one
after another) and `vmap` (`torch.func.functional_call` under `torch.func.vmap` over parameters
stacked on a leading member axis, one AdamW over the stacked tensors, clipping per member; on
PyTorch 1.13 through `functorch`, skipped where neither exists). `ms_per_step` is the time of one
step of all M members.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # PyTorch 2.x
    from torch.func import functional_call, stack_module_state, vmap
except ImportError:  # PyTorch 1.13: the same functions in functorch, where installed
    try:
        from functorch import combine_state_for_ensemble, vmap

        functional_call = stack_module_state = None
    except ImportError:
        vmap = None


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


def time_steps(step, warmup, steps):
    """Milliseconds of each of `steps` calls of `step` after `warmup` untimed ones: wall-clock
    times, and the CPU times of this process (all its threads; on a machine shared with other
    work, what the step cost rather than how long it waited for a core)."""
    times, cpu = [], []
    for i in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    return times, cpu


def solo_step(model, opt, idx, tgt):
    """One training step of one model: cross-entropy, backward, clipping at global norm 1, AdamW."""
    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(idx), tgt).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return step


def loop_step(models, opts, idx, tgt):
    """One step of every member, one model after another (idx `[members, batch, seq]`)."""
    steps = [solo_step(m, o, idx[i], tgt[i]) for i, (m, o) in enumerate(zip(models, opts))]

    def step():
        for s in steps:
            s()
    return step


def vmap_step(models, idx, tgt):
    """One step of every member as one batched model: parameters `[members, ...]`, vmap over members."""
    if stack_module_state is not None:
        params, buffers = stack_module_state(models)
        base = models[0]

        def loss_one(p, b, x, y):
            return F.cross_entropy(functional_call(base, (p, b), (x,)), y)
        names = list(params)
        leaves = [params[n] for n in names]
        losses = vmap(loss_one)

        def forward():
            return losses(dict(zip(names, leaves)), buffers, idx, tgt)
    else:  # functorch on 1.13
        fmodel, leaves, buffers = combine_state_for_ensemble(models)
        leaves = [p.detach().requires_grad_() for p in leaves]

        def loss_one(p, b, x, y):
            return F.cross_entropy(fmodel(p, b, x), y)
        losses = vmap(loss_one)

        def forward():
            return losses(tuple(leaves), buffers, idx, tgt)
    opt = torch.optim.AdamW(leaves, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.98))

    def step():
        opt.zero_grad(set_to_none=True)
        forward().sum().backward()  # members are independent: the sum's gradient is each member's own
        with torch.no_grad():
            norms = torch.stack([p.grad.flatten(1).pow(2).sum(1) for p in leaves]).sum(0).sqrt()
            coef = (1.0 / (norms + 1e-6)).clamp(max=1.0)
            for p in leaves:
                p.grad.mul_(coef.view(-1, *([1] * (p.grad.dim() - 1))))
        opt.step()
    return step


def row(a, n_layers, d_model, n_heads, timed, **extra):
    times, cpu = timed
    return {
        'arch': 'gpt2', 'n_layers': n_layers, 'd_model': d_model, 'n_heads': n_heads, 'batch_size': a.batch,
        'seq_len': 6, 'vocab': 1200, 'backend': 'pytorch', 'threads': a.threads,
        'ms_per_step': round(statistics.median(times), 2), 'ms_min': round(min(times), 2),
        'ms_max': round(max(times), 2), 'cpu_ms_per_step': round(statistics.median(cpu), 2),
        'torch': torch.__version__, **extra,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--models', default='2x128x4,4x256x8,8x768x12', help='n_layers x d_model x n_heads, comma-separated')
    p.add_argument('--batch', type=int, default=512)
    p.add_argument('--members', type=int, default=1, help='also time this many models trained together')
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
        times = time_steps(solo_step(model, opt, idx, tgt), a.warmup, a.steps)
        print(json.dumps(row(a, n_layers, d_model, n_heads, times)), flush=True)
        if a.members <= 1:
            continue
        models = [GPT(n_layers, d_model, n_heads, vocab, seq) for _ in range(a.members)]
        idx = torch.randint(0, vocab, (a.members, a.batch, seq))
        tgt = torch.randint(0, vocab, (a.members, a.batch))
        opts = [torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.98)) for m in models]
        ways = [('loop', lambda: loop_step(models, opts, idx, tgt))]
        if vmap is not None:
            ways.append(('vmap', lambda: vmap_step(models, idx, tgt)))
        for way, make in ways:
            times = time_steps(make(), a.warmup, a.steps)
            print(json.dumps(row(a, n_layers, d_model, n_heads, times, members=a.members, ensemble=way)), flush=True)


if __name__ == '__main__':
    main()
