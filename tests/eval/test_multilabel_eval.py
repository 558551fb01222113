import numpy as np
import pytest
import torch

from humanssl.errors import UserError
from humanssl.eval.multilabel import average_precision, multilabel_map


def sklearn_ap(scores, labels):
    """scikit-learn's average_precision_score written from its definition: one threshold per
    distinct score, AP = sum_n (R_n - R_{n-1}) P_n."""
    ap, prev_recall, n_pos = 0.0, 0.0, labels.sum()
    for t in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= t
        tp = labels[chosen].sum()
        recall = tp / n_pos
        ap += (recall - prev_recall) * tp / chosen.sum()
        prev_recall = recall
    return ap


def test_hand_computed_ap():
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0.1, 0.2, 0.3], [1, 1, 0]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert average_precision([0.4, 0.1], [1, 0]) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_equals_the_sklearn_definition_on_random_data(seed):
    g = np.random.default_rng(seed)
    labels = (g.random(60) < 0.3).astype(int)
    labels[0] = 1
    scores = g.normal(size=60) + labels * 0.8
    assert average_precision(scores, labels) == pytest.approx(sklearn_ap(scores, labels), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_ties_count_against_the_positives_as_the_official_shift(seed):
    g = np.random.default_rng(seed)
    labels = (g.random(80) < 0.4).astype(int)
    labels[0] = 1
    scores = np.round(g.random(80), 1)  # many exact ties between positives and negatives
    shifted = scores - 1e-5 * labels  # what the official code ranks
    ours = average_precision(scores, labels)
    assert ours == pytest.approx(sklearn_ap(shifted, labels), abs=1e-12)
    assert ours == pytest.approx(sklearn_ap(scores, labels), abs=1e-12)
    # breaking ties in favour of positives would score higher whenever a tie mixes the two
    assert ours <= sklearn_ap(scores + 1e-5 * labels, labels) + 1e-12


def test_map_difficult_and_empty_classes():
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.1, 0.9, 0.1], [0.2, 0.3, 0.0]])
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    difficult = torch.zeros_like(labels, dtype=torch.bool)
    out = multilabel_map(scores, labels, classes=["a", "b", "c"])
    ap_a = average_precision(scores[:, 0], labels[:, 0])
    ap_b = average_precision(scores[:, 1], labels[:, 1])
    assert np.isnan(out.per_class_ap[2])  # no positive: no AP, left out of the mean
    assert out.mAP == pytest.approx(100 * (ap_a + ap_b) / 2)
    # difficult negatives that outrank a positive no longer cost anything
    difficult[1, 0] = difficult[3, 0] = True
    out_d = multilabel_map(scores, labels, difficult)
    assert ap_a < 1 and out_d.per_class_ap[0] == pytest.approx(100.0)
    assert "mAP" in out.table() and "a" in out.table()


def test_bad_inputs():
    with pytest.raises(UserError, match="shape"):
        multilabel_map(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(UserError, match="positive"):
        multilabel_map(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(UserError, match="finite"):
        multilabel_map(np.full((2, 1), np.nan), np.ones((2, 1)))
