"""Label spreading on a k-nearest-neighbour graph (Zhou et al., "Learning with local and global consistency",
NIPS 2004): a few labels flow along the graph of unlabelled points to every point near them.

With n points (labelled and unlabelled) and C classes:

1. ``W``: each point is joined to its ``k`` most cosine-similar points with weight ``max(cos, 0)^p``, and the
   graph is made symmetric (``W + W^T``).
2. ``S = D^(-1/2) W D^(-1/2)`` with ``D`` the diagonal of row sums (a normalised graph).
3. ``Y``: one-hot rows for the labelled points, zeros elsewhere. Iterate ``F <- alpha S F + (1 - alpha) Y``
   (it converges to ``(1 - alpha) (I - alpha S)^(-1) Y``); a point's label is ``argmax F``.

A new point (a test image) takes the similarity-weighted vote of its ``k`` nearest graph points. In this lab
the points are the frozen autoencoder's codes: the encoder never saw a label, and neither did the graph; the
labels only pick which cluster of codes is which digit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nearest(
    query: torch.Tensor, keys: torch.Tensor, k: int, *, exclude_self: bool = False, chunk: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and indices of the ``k`` nearest ``keys`` of each ``query`` row (in chunks)."""
    q, kk = F.normalize(query, dim=1), F.normalize(keys, dim=1)
    sims, idx = [], []
    for i in range(0, len(q), chunk):
        s = q[i : i + chunk] @ kk.T
        if exclude_self:
            rows = torch.arange(len(s), device=s.device)
            s[rows, rows + i] = -2.0
        v, j = s.topk(k, dim=1)
        sims.append(v)
        idx.append(j)
    return torch.cat(sims), torch.cat(idx)


class LabelSpreading:
    """A k-NN graph over points ``z``; :meth:`spread` propagates labels, :meth:`predict` labels new points."""

    def __init__(self, z: torch.Tensor, k: int = 10, power: float = 3.0):
        self.z, self.k, self.power = z, k, power
        n = len(z)
        sims, idx = nearest(z, z, k, exclude_self=True)
        rows = torch.arange(n, device=z.device).repeat_interleave(k)
        w = sims.flatten().clamp_min(0) ** power
        W = torch.sparse_coo_tensor(torch.stack([rows, idx.flatten()]), w, (n, n), check_invariants=False)
        W = (W + W.t()).coalesce()
        deg = torch.sparse.sum(W, 1).to_dense().clamp_min(1e-12)
        self.W, self.dinv = W, deg.rsqrt()

    def spread(
        self, labelled: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float = 0.99, iters: int = 40
    ) -> torch.Tensor:
        """Scores ``F`` (n, C) after ``iters`` steps of ``F <- alpha S F + (1 - alpha) Y``."""
        Y = torch.zeros(len(self.z), num_classes, device=self.z.device)
        Y[labelled, y] = 1.0
        Fm = Y.clone()
        d = self.dinv.unsqueeze(1)
        for _ in range(iters):
            Fm = alpha * d * torch.sparse.mm(self.W, d * Fm) + (1 - alpha) * Y
        return Fm

    def predict(self, scores: torch.Tensor, neighbours: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Classes of new points from their ``nearest(new, self.z, k)`` neighbours and spread ``scores``."""
        sims, idx = neighbours
        labels = scores.argmax(1)[idx]
        votes = torch.zeros(len(idx), scores.shape[1], device=idx.device)
        votes.scatter_add_(1, labels, sims.clamp_min(0) ** self.power)
        return votes.argmax(1)
