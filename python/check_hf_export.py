"""Checks a folder written by `grokpipe export --format hf` against grokpipe's own numbers.

    .venv/bin/python python/check_hf_export.py EXPORT_DIR CASES_JSON [EXPORT_DIR CASES_JSON ...] [--tolerance 1e-4]

Each CASES_JSON holds what grokpipe computed for some test facts (test/export-hf.test.ts writes it):
  {"prompts": ["<attr_0> <q> <e_5> <mask> <e_7>", ...],   # input tokens joined by spaces
   "token_ids": [[9, 1, 5, 2, 7], ...],                    # grokpipe's ids of each prompt
   "positions": [4, ...],                                  # answer position (length - 1)
   "logits": [[...vocab floats...], ...]}                  # grokpipe's logits there

For each pair, it loads the folder with transformers (`AutoTokenizer`, `AutoModelForCausalLM`,
PyTorch, float32, eval mode), tokenizes the prompts as a right-padded batch, runs the model, and
prints one JSON line: the model and tokenizer classes, whether every prompt's ids equal
grokpipe's, the largest absolute difference of the answer-position logits, and whether the argmax
agrees everywhere. Exit status 1 when, for any pair, the ids differ or a logit differs by more
than the tolerance. (One process for several folders: importing torch and transformers is most
of the time.)
"""

import argparse
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def check(export_dir: str, cases_file: str) -> dict:
    """The report of one folder against the cases grokpipe computed."""
    with open(cases_file, encoding="utf-8") as f:
        cases = json.load(f)
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    model = AutoModelForCausalLM.from_pretrained(export_dir, dtype=torch.float32).eval()

    batch = tokenizer(cases["prompts"], padding=True, return_tensors="pt")
    ids = [
        row[mask.bool()].tolist() for row, mask in zip(batch["input_ids"], batch["attention_mask"])
    ]
    ids_equal = ids == cases["token_ids"]
    with torch.no_grad():
        logits = model(**batch).logits  # [n, seq, vocab]
    positions = torch.tensor(cases["positions"])
    answer = logits[torch.arange(len(positions)), positions]  # [n, vocab]
    expected = torch.tensor(cases["logits"], dtype=torch.float32)
    diff = (answer - expected).abs().max().item()
    return {
        "export_dir": export_dir,
        "model_class": type(model).__name__,
        "tokenizer_class": type(tokenizer).__name__,
        "n": len(cases["prompts"]),
        "ids_equal": ids_equal,
        "first_ids": ids[:2],
        "max_abs_diff": diff,
        "argmax_equal": bool((answer.argmax(-1) == expected.argmax(-1)).all()),
        "logit_scale": expected.abs().max().item(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", metavar="EXPORT_DIR CASES_JSON", help="pairs of an exported folder and its cases")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    if len(args.pairs) % 2 != 0:
        parser.error("give EXPORT_DIR CASES_JSON pairs")
    ok = True
    for export_dir, cases_file in zip(args.pairs[::2], args.pairs[1::2]):
        report = check(export_dir, cases_file)
        print(json.dumps(report), flush=True)
        ok = ok and report["ids_equal"] and report["max_abs_diff"] <= args.tolerance
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
