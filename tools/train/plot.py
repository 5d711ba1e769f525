"""Loss curve of a training run: tools/train/loss.csv -> tools/train/loss.png (bits per character).

    /usr/bin/python3 tools/train/plot.py
"""
import csv
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    with open(os.path.join(HERE, 'loss.csv')) as f:
        rows = list(csv.DictReader(f))
    tokens = [int(r['tokens']) / 1e3 for r in rows]
    # The first row is evaluated before any training step has been averaged: no train loss yet.
    train = [(t, float(r['train_bits_per_char'])) for t, r in zip(tokens, rows) if int(r['step']) > 0]
    val = [float(r['val_bits_per_char']) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot([t for t, _ in train], [v for _, v in train], 'o-', label='train (mean since previous eval)')
    ax.plot(tokens, val, 's-', label='validation (last 10%)')
    ax.axhline(2.5, color='grey', linestyle='--', linewidth=0.8, label='2.5 bits/char bar')
    ax.set_xlabel('training tokens (thousands)')
    ax.set_ylabel('bits per character')
    ax.set_title('shakespeare-llama on Tiny Shakespeare')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, 'loss.png'))
    print(f'wrote loss.png from {len(rows)} evaluations; last val {val[-1]:.4f} bits/char')


if __name__ == '__main__':
    main()
