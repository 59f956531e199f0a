"""Few-label heads on a trained latent run's frozen codes, with and without augmented labelled images.

    PYTHONPATH=src python benchmarks/latent_augment_sweep.py RUN_DIR [--methods mlp,aug60_mlp] [--schemes first]
    PYTHONPATH=src python benchmarks/latent_augment_sweep.py RUN_DIR --dev --methods aug60_mlp,aug60_mlp_tta10

The lab's own label draws (genlab.data.splits.label_draws with the run's seed), codes standardised on the training
codes as in the lab, test accuracy per draw of each method (mean and spread printed; one JSON line per method).
``mlp`` is the lab's "codes + MLP" row (CodeClassifier 128 hidden, dropout 0.2, AdamW 1e-3, weight decay 1e-4,
``clf_steps`` full-batch steps); ``augK_*`` add K distorted copies of each labelled image (augment_images).
``..._ttaM`` (test-time augmentation) averages the head's class probabilities over each scored image and ``M``
distorted copies of it (the same augment_images): it sees only the image being classified. No unlabelled image is
used by any method here.

``--dev`` chooses settings without the test set: the labelled images are the "first" scheme's blocks 5-9 (draws
5..9: training images 250-499, none of which the reported draws 0-4 use), and each head is scored on training images
50000-59999 (their labels serve only to score, never to train). Settings picked there are then reported once on
the test set with draws 0-4.

Chosen with ``--dev`` on the full report's autoencoder (``genlab report --full``, seed 0), mean +- std over the 5
dev draws (``--dev --schemes first --methods ...``). The lab's earlier row, 60 copies and the head's 300
full-batch steps: 0.777 +- 0.015. Longer training paid most (60 copies: 600 steps 0.788, 1000 0.795, 2000 0.800,
4000 0.804), then more copies (200 copies: 300 steps 0.788, 1000 0.806, 2000 0.812). Random batches of 2048 rows
(``_b2048``) cost a fifth of a full batch of 10k rows and score the same (200 copies, 2000 steps: 0.812), which made
these affordable: 600 copies 2000 steps 0.818, 4000 0.825, **8000 0.831 +- 0.015** (now the lab's ``augment=600,
augment_steps=8000, augment_batch=2048``); 1000 copies 4000 steps 0.826, no more than 600. What did not pay:
test-time augmentation (``aug60_mlp_tta10``: 0.767, worse), logistic regression on the copies (0.734), 5 heads
averaged (``aug60_mlp_ens5``: 0.783 against 0.777, less than longer training).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from genlab.data.splits import label_draws
from genlab.labs.latent.config import LatentConfig
from genlab.labs.latent.core import load_autoencoder, load_data
from genlab.nn.autoencoder import CodeClassifier
from genlab.nn.few_label import augmented_codes, frozen_codes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--methods", default="mlp,logreg,aug30_mlp,aug60_mlp,aug30_mlp_ens5")
    p.add_argument("--schemes", default="first,balanced")
    p.add_argument("--dev", action="store_true", help="label blocks 5-9 scored on training images 50000-59999")
    args = p.parse_args()
    torch.set_num_threads(1)
    from genlab.runs import Run

    run = Run(args.run)
    cfg = run.config(LatentConfig)
    data, ae = load_data(cfg), load_autoencoder(run, torch.device("cpu"))
    x_eval, y_eval = (data.train_x[50000:60000], data.train_y[50000:60000]) if args.dev else (data.test_x, data.test_y)
    (ztr, zte), scale = frozen_codes(ae.encoder, data.train_x, x_eval)
    draws = label_draws(
        data.train_y, cfg.labels, tuple(args.schemes.split(",")), cfg.draws * (2 if args.dev else 1), cfg.seed
    )
    draws = {k: v for k, v in draws.items() if (k[1] >= cfg.draws) == args.dev}
    tta: dict[int, torch.Tensor] = {}  # M -> (M + 1, N, D) codes of each scored image and M distorted copies

    def eval_codes(m: int) -> torch.Tensor:
        if m not in tta:
            z, _ = augmented_codes(ae.encoder, x_eval, y_eval, m, scale, seed=12345)
            tta[m] = z.view(m + 1, len(x_eval), -1)
        return tta[m]

    def rows(idx: torch.Tensor, d: int, copies: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = data.train_y[idx]
        if not copies:
            return ztr[idx], y
        return augmented_codes(ae.encoder, data.train_x[idx], y, copies, scale, seed=cfg.seed * 1000 + d)

    def mlp(z: torch.Tensor, y: torch.Tensor, seed: int, steps: int, m: int = 0, batch: int = 0) -> torch.Tensor:
        torch.manual_seed(seed)
        head = CodeClassifier(z.shape[1], 10, hidden=128, dropout=0.2)
        opt = torch.optim.AdamW(head.parameters(), 1e-3, weight_decay=1e-4)
        for _ in range(steps):
            i = torch.randint(len(z), (batch,)) if batch else slice(None)  # random rows, or the full batch
            loss = F.cross_entropy(head(z[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            return F.softmax(head(eval_codes(m)), -1).mean(0)

    def logreg(z: torch.Tensor, y: torch.Tensor, m: int = 0) -> torch.Tensor:
        fit = LogisticRegression(C=1.0, max_iter=3000).fit(z.numpy(), y.numpy())
        zs = eval_codes(m)
        return torch.tensor(fit.predict_proba(zs.reshape(-1, zs.shape[-1]).numpy())).view(len(zs), -1, 10).mean(0)

    def method(name: str):
        """``[augK_](mlp[STEPS]|logreg)[_ens5][_ttaM][_bB]``: K copies per labelled image, the MLP's steps (default
        ``clf_steps``), 5 heads averaged, M test-time copies, random batches of B rows (default: full batch)."""
        head, *opts = name.split("_")[1:] if name.startswith("aug") else name.split("_")
        copies = int(name.split("_")[0][3:]) if name.startswith("aug") else 0
        opt = {o.rstrip("0123456789"): int(o.lstrip("abcdefghijklmnopqrstuvwxyz") or 0) for o in opts}
        m, batch = opt.get("tta", 0), opt.get("b", 0)
        if head == "logreg":
            return lambda idx, d: logreg(*rows(idx, d, copies), m)
        steps = int(head[3:] or cfg.clf_steps)
        if "ens" in opt:
            k = opt["ens"]
            return lambda idx, d: sum(
                mlp(*rows(idx, d, copies), cfg.seed + 100 * d + s, steps, m, batch) for s in range(k)
            )
        return lambda idx, d: mlp(*rows(idx, d, copies), cfg.seed + d, steps, m, batch)

    for name in args.methods.split(","):
        fn, out = method(name), {"method": name}
        for scheme in args.schemes.split(","):
            accs = [float((fn(i, d).argmax(1) == y_eval).float().mean()) for (s, d), i in draws.items() if s == scheme]
            out[scheme] = {
                "mean": round(float(np.mean(accs)), 4),
                "std": round(float(np.std(accs)), 4),
                "per_draw": accs,
            }
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
