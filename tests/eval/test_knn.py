"""kNN re-id scoring of a backbone, and of a SOLIDER Swin at the semantic weights it reports."""

import pytest
import torch

from humanssl.data.synthetic import SyntheticLabeled, SyntheticPersons, labeled_split
from humanssl.data.transforms import eval_transform
from humanssl.errors import UserError
from humanssl.eval.knn import AtSemanticWeight, extract, knn_reid, knn_scores, labels
from humanssl.models.backbones import create_backbone


def sets():
    world = SyntheticPersons(seed=0, image_size=(64, 32))
    query, gallery = labeled_split(world, 4, first_pid=1, images_per_camera=1, cameras_per_identity=2)
    tf = eval_transform((64, 32))
    return SyntheticLabeled(query, world, tf), SyntheticLabeled(gallery, world, tf)


def test_a_plain_backbone_gets_one_score_under_its_name():
    torch.manual_seed(0)
    q, g = sets()
    net = create_backbone("resnet_mini")
    scores = knn_scores(net, "random init", q, g, torch.device("cpu"))
    assert list(scores) == ["random init"]
    assert scores["random init"] == knn_reid(net, q, g, torch.device("cpu"))


def test_a_solider_swin_is_scored_at_lambda_0_2_and_1():
    torch.manual_seed(0)
    q, g = sets()
    swin = create_backbone("swin_mini")
    scores = knn_scores(swin, "pretrained", q, g, torch.device("cpu"))
    assert list(scores) == ["pretrained (lambda 0.2)", "pretrained (lambda 1.0)"]
    x = torch.randn(2, 3, 64, 32)
    swin.eval()
    at_one = AtSemanticWeight(swin, 1.0)(x)
    torch.testing.assert_close(at_one, swin.forward_stages(x, 1.0)[0])
    assert not torch.allclose(at_one, AtSemanticWeight(swin, 0.0)(x))  # the controller really acts
    assert scores["pretrained (lambda 1.0)"] == knn_reid(AtSemanticWeight(swin, 1.0), q, g, torch.device("cpu"))


def test_a_set_without_labelled_items_is_refused_by_name():
    class Unlabelled(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"image": torch.zeros(3, 64, 32)}

    q, _ = sets()
    with pytest.raises(UserError, match="Unlabelled"):
        knn_reid(None, Unlabelled(), q, torch.device("cpu"))


def test_labels_come_from_the_items_without_decoding_images():
    q, _ = sets()
    pids, cams = labels(q)
    assert pids.tolist() == [it.pid for it in q.items] and cams.tolist() == [it.camid for it in q.items]
    feats, p2, c2 = extract(None, q, torch.device("cpu"))
    assert torch.equal(p2, torch.tensor([q[i]["pid"] for i in range(len(q))]))
    assert torch.equal(c2, torch.tensor([q[i]["camid"] for i in range(len(q))]))
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(len(q)))
