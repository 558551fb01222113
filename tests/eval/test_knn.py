"""kNN re-id scoring of a backbone, and of a SOLIDER Swin at the semantic weights it reports."""

import torch

from humanssl.data.synthetic import SyntheticLabeled, SyntheticPersons, labeled_split
from humanssl.data.transforms import eval_transform
from humanssl.eval.knn import AtSemanticWeight, knn_reid, knn_scores
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
