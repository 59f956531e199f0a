"""Few-label heads on a trained latent run's frozen codes, with and without augmented labelled images.

    PYTHONPATH=src python benchmarks/latent_augment_sweep.py RUN_DIR [--methods mlp,aug60_mlp] [--schemes first]

The lab's own label draws (genlab.data.splits.label_draws with the run's seed), codes standardised on the training
codes as in the lab, test accuracy per draw of each method (mean and spread printed; one JSON line per method).
``mlp`` is the lab's "codes + MLP" row (CodeClassifier 128 hidden, dropout 0.2, AdamW 1e-3, weight decay 1e-4,
``clf_steps`` full-batch steps); ``augK_*`` add K distorted copies of each labelled image (augment_images).
No unlabelled image is used by any method here.
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
    args = p.parse_args()
    torch.set_num_threads(1)
    from genlab.runs import Run

    run = Run(args.run)
    cfg = run.config(LatentConfig)
    data, ae = load_data(cfg), load_autoencoder(run, torch.device("cpu"))
    (ztr, zte), scale = frozen_codes(ae.encoder, data.train_x, data.test_x)
    draws = label_draws(data.train_y, cfg.labels, tuple(args.schemes.split(",")), cfg.draws, cfg.seed)

    def rows(idx: torch.Tensor, d: int, copies: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = data.train_y[idx]
        if not copies:
            return ztr[idx], y
        return augmented_codes(ae.encoder, data.train_x[idx], y, copies, scale, seed=cfg.seed * 1000 + d)

    def mlp(z: torch.Tensor, y: torch.Tensor, seed: int, steps: int = cfg.clf_steps) -> torch.Tensor:
        torch.manual_seed(seed)
        m = CodeClassifier(z.shape[1], 10, hidden=128, dropout=0.2)
        opt = torch.optim.AdamW(m.parameters(), 1e-3, weight_decay=1e-4)
        for _ in range(steps):
            loss = F.cross_entropy(m(z), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            return F.softmax(m(zte), 1)

    def logreg(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tensor(LogisticRegression(C=1.0, max_iter=3000).fit(z.numpy(), y.numpy()).predict_proba(zte))

    def method(name: str):  # "mlp", "logreg", "augK_mlp", "augK_logreg", "augK_mlp_ens5", "augK_mlp600"
        copies = int(name.split("_")[0][3:]) if name.startswith("aug") else 0
        if name.endswith("logreg"):
            return lambda idx, d: logreg(*rows(idx, d, copies))
        if name.endswith("ens5"):
            return lambda idx, d: sum(mlp(*rows(idx, d, copies), cfg.seed + 100 * d + s) for s in range(5))
        steps = int(name.split("mlp")[1]) if name.split("mlp")[1] else cfg.clf_steps
        return lambda idx, d: mlp(*rows(idx, d, copies), cfg.seed + d, steps)

    for name in args.methods.split(","):
        fn, out = method(name), {"method": name}
        for scheme in args.schemes.split(","):
            accs = [
                float((fn(i, d).argmax(1) == data.test_y).float().mean()) for (s, d), i in draws.items() if s == scheme
            ]
            out[scheme] = {
                "mean": round(float(np.mean(accs)), 4),
                "std": round(float(np.std(accs)), 4),
                "per_draw": accs,
            }
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
