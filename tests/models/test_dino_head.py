import torch

from humanssl.models.dino_head import DINOHead

# The DINO-head keys of an official SOLIDER swin_tiny training checkpoint (prefix "head.").
OFFICIAL_KEYS = {
    "mlp.0.weight": (2048, 768), "mlp.0.bias": (2048,),
    "mlp.2.weight": (2048, 2048), "mlp.2.bias": (2048,),
    "mlp.4.weight": (256, 2048), "mlp.4.bias": (256,),
    "last_layer.weight_g": (65536, 1), "last_layer.weight_v": (65536, 256),
}


def test_official_names_and_shapes():
    with torch.device("meta"):  # full size without allocating it
        head = DINOHead(768, 65536)
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == OFFICIAL_KEYS


def test_forward_and_normalised_last_layer():
    head = DINOHead(12, 20, hidden_dim=16, bottleneck_dim=8)
    out = head(torch.randn(5, 12))
    assert out.shape == (5, 20)
    g = head.last_layer.weight_g
    assert not g.requires_grad and torch.all(g == 1)
    torch.testing.assert_close(head.last_layer.weight.norm(dim=1), torch.ones(20))
    # Unit prototypes on an L2-normalised bottleneck: logits are cosines.
    assert out.abs().max() <= 1 + 1e-5
    # Gradients reach v but never the frozen g.
    out.sum().backward()
    assert head.last_layer.weight_v.grad is not None and g.grad is None


def test_trainable_g_without_norm_last_layer():
    head = DINOHead(12, 20, hidden_dim=16, bottleneck_dim=8, norm_last_layer=False)
    assert head.last_layer.weight_g.requires_grad
    assert torch.all(head.last_layer.weight_g == 1)


def test_one_layer_and_bn_variants():
    one = DINOHead(12, 20, bottleneck_dim=8, nlayers=1)
    assert set(one.state_dict()) == {"mlp.weight", "mlp.bias", "last_layer.weight_g", "last_layer.weight_v"}
    assert one(torch.randn(3, 12)).shape == (3, 20)

    bn = DINOHead(12, 20, hidden_dim=16, bottleneck_dim=8, use_bn=True)
    params = {k for k, _ in bn.named_parameters()}
    assert params == {
        "mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias",
        "mlp.3.weight", "mlp.3.bias", "mlp.4.weight", "mlp.4.bias",
        "mlp.6.weight", "mlp.6.bias", "last_layer.weight_g", "last_layer.weight_v",
    }
    assert "mlp.1.running_mean" in bn.state_dict()
    assert bn(torch.randn(3, 12)).shape == (3, 20)


def test_init():
    head = DINOHead(64, 10, hidden_dim=256, bottleneck_dim=32)
    w = head.mlp[0].weight
    assert torch.all(head.mlp[0].bias == 0)
    assert abs(w.std().item() - 0.02) < 0.003 and w.abs().max() <= 2.0
