"""Multi-label classification metrics: per-class average precision and their mean (mAP).

The protocol of SS-PRL's (and SwAV's) VOC07 / COCO linear evaluation (notes §1.6): for each
class, scikit-learn's `average_precision_score` over the test images, then the mean over
classes. AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds, i.e. precision at
each threshold weighted by the recall it adds (no interpolation, no 11 points). Two details:
* Ties count against the positives: the official code subtracts 1e-5 x label from the scores
  before ranking. Here a negative ranks before a positive of exactly the same score, which is
  that shift without its side effect on scores closer than 1e-5 (and gives the AP scikit-learn
  gives with one threshold per distinct score: a tied group's positives earn the precision at
  the group's end either way).
* VOC's "difficult" pairs (0 in the class files) are left out of their class's AP.
A class with no positive in the test set has no AP (NaN) and is left out of the mean.
Scores are any monotone confidences (logits or probabilities); arrays or tensors (N, C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from humanssl.errors import UserError


def _array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def average_precision(scores, labels) -> float:
    """AP of one class: scores (N,), labels (N,) 0/1. NaN if there is no positive."""
    scores = _array(scores, "scores").astype(np.float64).ravel()
    labels = _array(labels, "labels").ravel() > 0
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("nan")
    # descending score; at equal score negatives first (lexsort: last key is the primary one)
    order = np.lexsort((labels, -scores))
    s, y = scores[order], labels[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    # a threshold ends where the next item has another (score, label) pair
    last = np.r_[(s[1:] != s[:-1]) | (y[1:] != y[:-1]), True]
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall_gain = np.diff(np.r_[0, tp]) / n_pos
    return float(np.sum(recall_gain * precision))


@dataclass
class MultiLabelScores:
    mAP: float  # percent, mean over classes with at least one positive
    per_class_ap: np.ndarray  # percent, (C,), NaN where the class has no positive
    classes: list[str] | None = None

    def table(self) -> str:
        names = self.classes or [str(c) for c in range(len(self.per_class_ap))]
        width = max(len(n) for n in names)
        lines = [f"{n:<{width}}  {ap:5.1f}" for n, ap in zip(names, self.per_class_ap)]
        return "\n".join(lines + [f"{'mAP':<{width}}  {self.mAP:5.1f}"])


def multilabel_map(scores, labels, difficult=None, classes=None) -> MultiLabelScores:
    """Per-class AP and mAP, in percent. `labels` 0/1 (N, C); `difficult` optional bool (N, C):
    those pairs are excluded from their class's AP (VOC)."""
    scores, labels = _array(scores, "scores"), _array(labels, "labels")
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise UserError(f"multi-label scores {scores.shape} and labels {labels.shape}: expected two "
                        "arrays of one shape (images, classes)")
    if difficult is None:
        keep = np.ones(labels.shape, dtype=bool)
    else:
        difficult = _array(difficult, "difficult").astype(bool)
        if difficult.shape != labels.shape:
            raise UserError(f"multi-label difficult mask {difficult.shape}: expected the labels' shape {labels.shape}")
        keep = ~difficult
    if classes is not None and len(classes) != labels.shape[1]:
        raise UserError(f"{len(classes)} class names for {labels.shape[1]} score columns; expected one per column")
    if not np.isfinite(scores).all():
        raise UserError("multi-label scores contain NaN or inf; expected finite confidences")
    ap = np.array([average_precision(scores[keep[:, c], c], labels[keep[:, c], c]) for c in range(labels.shape[1])])
    if np.isnan(ap).all():
        raise UserError("no class has a positive test image; expected labels with at least one 1")
    return MultiLabelScores(float(np.nanmean(ap) * 100), ap * 100, list(classes) if classes is not None else None)
