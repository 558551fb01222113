"""Cross-view gait evaluation against the official GaitSet / SelfGait evaluators and oracles."""

import numpy as np
import pytest
import torch
from PIL import Image

from humanssl.errors import UserError
from humanssl.eval.gait import (accuracy_heatmap, cross_view_scores, evaluate_gait, exclude_identical_views,
                                result_heatmaps)
from tests.fixtures import conformance, needs_fixture

GAITSET = ("gaitset", "casiab_eval_synthetic.npz")
SELFGAIT = ("selfgait", "selfgait_eval_synthetic.npz")


@needs_fixture(*GAITSET)
def test_casia_b_flattened_euclidean_matches_gaitset_evaluator():
    ref = np.load(conformance(*GAITSET))
    result = evaluate_gait(ref["feature"], ref["label"], ref["seq_type"], ref["view"], "casia-b", "euclidean")
    assert result.conditions == ["NM", "BG", "CL"] and len(result.views) == 11
    np.testing.assert_allclose(result.acc, ref["acc"], rtol=0, atol=1e-9)
    for cond in ("NM", "BG", "CL"):
        np.testing.assert_allclose(result.rank1_excl[cond], ref[f"rank1_excl_{cond}"], rtol=1e-9)
    np.testing.assert_allclose(result.rank1_excl_per_view["NM"], ref["rank1_excl_per_view_NM"], rtol=1e-9)
    np.testing.assert_allclose(result.rank1_incl["NM"], ref["rank1_incl_NM"], rtol=1e-9)
    # 11 views: the official hard-coded divisor 10 is the right one
    official = evaluate_gait(ref["feature"], ref["label"], ref["seq_type"], ref["view"], "casia-b",
                             official_divisor=True)
    assert official.rank1_excl == result.rank1_excl


@needs_fixture(*SELFGAIT)
def test_casia_b_mean_part_distance_matches_selfgait_evaluator():
    ref = np.load(conformance(*SELFGAIT))
    feature = torch.from_numpy(ref["feature_parts_first"]).transpose(0, 1)  # (n, parts, d)
    result = evaluate_gait(feature, ref["label"], ref["seq_type"], ref["view"], "casia-b", "part_mean")
    np.testing.assert_allclose(result.acc, ref["acc"], rtol=0, atol=1e-9)
    for cond in ("NM", "BG", "CL"):
        np.testing.assert_allclose(result.rank1_excl[cond], ref[f"rank1_excl_{cond}"], rtol=1e-9)
    flat = evaluate_gait(feature, ref["label"], ref["seq_type"], ref["view"], "casia-b", "euclidean")
    assert not np.array_equal(flat.acc, result.acc)  # the two distances really differ here


def synthetic_ou_mvlp(subjects=5, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    views = [f"{a:03d}" for a in list(range(0, 91, 15)) + list(range(180, 271, 15))]
    centre = rng.normal(size=(subjects, dim))
    rows = [(s, seq, v) for s in range(subjects) for seq in ("00", "01") for v in views]
    feature = np.stack([centre[s] + 0.9 * rng.normal(size=dim) for s, _, _ in rows]).astype(np.float32)
    label, seq, view = (np.array([r[i] for r in rows]) for i in range(3))
    return feature, label.astype(str), seq, view, views


def test_ou_mvlp_cells_match_a_brute_force_oracle_and_divisor_is_13():
    feature, label, seq, view, views = synthetic_ou_mvlp()
    result = evaluate_gait(feature, label, seq, view, "ou-mvlp")
    assert result.conditions == ["00"] and result.views == views and result.acc.shape == (1, 14, 14, 5)
    for i, pv in enumerate(views):
        for j, gv in enumerate(views):
            p, g = (seq == "00") & (view == pv), (seq == "01") & (view == gv)
            d = np.linalg.norm(feature[p][:, None] - feature[g][None], axis=-1)
            top1 = label[g][d.argmin(1)] == label[p]
            assert result.acc[0, i, j, 0] == pytest.approx(100 * top1.mean(), abs=0.005)
    r1 = result.acc[0, :, :, 0]
    off = ~np.eye(14, dtype=bool)
    np.testing.assert_allclose(result.rank1_excl_per_view["00"], (r1 * off).sum(1) / 13)
    official = evaluate_gait(feature, label, seq, view, "ou-mvlp", official_divisor=True)
    np.testing.assert_allclose(official.rank1_excl["00"], result.rank1_excl["00"] * 13 / 10)


def average_precision(d: np.ndarray, probe_label: np.ndarray, gallery_label: np.ndarray) -> float:
    aps = []
    for row, lab in zip(d, probe_label):
        match = gallery_label[np.argsort(row, kind="stable")] == lab
        if match.any():
            ranks = np.flatnonzero(match) + 1
            aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    return float(np.mean(aps))


def test_map_per_cell_equals_a_numpy_oracle():
    feature, label, seq, view, views = synthetic_ou_mvlp(subjects=6, seed=1)
    # two gallery sequences per subject and view, so average precision is not just rank-1
    seq = np.where((seq == "00") & (np.arange(len(seq)) % 3 == 0), "01", seq)
    _, _, acc, mean_ap = cross_view_scores(feature, label, seq, view, "ou-mvlp", decimals=None)
    for i, j in [(0, 0), (2, 9), (13, 5)]:
        p, g = (seq == "00") & (view == views[i]), (seq == "01") & (view == views[j])
        d = np.linalg.norm(feature[p][:, None] - feature[g][None], axis=-1)
        assert mean_ap[0, i, j] == pytest.approx(100 * average_precision(d, label[p], label[g]), rel=1e-6)
        top5 = (label[g][np.argsort(d, 1, kind="stable")[:, :5]] == label[p][:, None]).any(1)
        assert acc[0, i, j, 4] == pytest.approx(100 * top5.mean(), rel=1e-9)


def test_identical_view_exclusion_skips_missing_views():
    acc = np.array([[90.0, 80.0, np.nan], [70.0, 100.0, 60.0], [50.0, 40.0, 30.0]])
    np.testing.assert_allclose(exclude_identical_views(acc), [80.0, 65.0, 45.0])
    np.testing.assert_allclose(exclude_identical_views(np.nan_to_num(acc), official_divisor=True), [8.0, 13.0, 9.0])


def test_heatmap_png_has_one_cell_per_view_pair(tmp_path):
    views = ["000", "018", "036"]
    acc = np.array([[100.0, 50.0, 0.0], [20.0, 90.0, 40.0], [10.0, 30.0, 80.0]])
    path = accuracy_heatmap(acc, views, tmp_path / "plots" / "nm.png", title="NM rank-1", cell=40)
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert img.shape == (50 + 3 * 40 + 40, 60 + 3 * 40 + 70, 3)
    corner = lambda i, j: img[50 + i * 40 + 3, 60 + j * 40 + 3]  # noqa: E731
    assert tuple(corner(0, 0)) == (253, 231, 37)  # 100 % is yellow
    assert tuple(corner(0, 2)) == (68, 1, 84)  # 0 % is dark purple
    assert corner(1, 1)[1] > corner(2, 0)[1]  # higher accuracy, lighter cell
    with pytest.raises(UserError):
        accuracy_heatmap(acc[:2], views, tmp_path / "bad.png")

    feature, label, seq, view, _ = synthetic_ou_mvlp(subjects=2)
    paths = result_heatmaps(evaluate_gait(feature, label, seq, view, "ou-mvlp"), tmp_path)
    assert [p.name for p in paths] == ["rank1_00.png"]
    assert Image.open(paths[0]).size == (60 + 14 * 44 + 70, 50 + 14 * 44 + 40)


def test_user_mistakes():
    feature, label, seq, view, _ = synthetic_ou_mvlp(subjects=2)
    with pytest.raises(UserError, match="protocol"):
        evaluate_gait(feature, label, seq, view, "tum-gaid")
    with pytest.raises(UserError, match="distance"):
        evaluate_gait(feature, label, seq, view, "ou-mvlp", "manhattan")
    with pytest.raises(UserError, match="gallery"):
        evaluate_gait(feature, label, seq, view, "casia-b")
    with pytest.raises(UserError, match="labels"):
        evaluate_gait(feature, label[:-1], seq, view, "ou-mvlp")


def test_integer_views_are_ordered_numerically():
    feature, label, seq, view, views = synthetic_ou_mvlp(subjects=2)
    as_int = view.astype(int)
    result = evaluate_gait(feature, label, seq, as_int, "ou-mvlp")
    assert result.views == [str(int(v)) for v in views]
    np.testing.assert_array_equal(result.acc, evaluate_gait(feature, label, seq, view, "ou-mvlp").acc)
