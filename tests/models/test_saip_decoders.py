"""SAIP's decoders: official names and sizes, and what each one computes."""

import json

import pytest
import torch

from humanssl.models.saip_decoders import CSMDecoder, CSRDecoder, CSSDecoder, token_map
from tests.fixtures import conformance, needs_fixture

KEYS = ("saip", "official_csl_vit_tiny_patch16_keys.json")


@needs_fixture(*KEYS)
@pytest.mark.parametrize("name, build", [("csr_decoder", CSRDecoder), ("csm_decoder", CSMDecoder),
                                         ("css_decoder", CSSDecoder)])
def test_default_decoders_have_the_official_keys_shapes_and_sizes(name, build):
    listing = json.loads(conformance(*KEYS).read_text())
    with torch.device("meta"):
        module = build()
    ours = [(k, list(v.shape)) for k, v in module.state_dict().items()]
    official = [(e["key"][len(name) + 1:], e["shape"])
                for e in listing["state_dict"] if e["key"].startswith(name + ".")]
    assert ours == official
    assert sum(p.numel() for p in module.parameters()) == listing["num_parameters"][name]


def tiny_csr():
    return CSRDecoder(embed_dim=8, num_patches=8, patch_size=(4, 4), decoder_embed_dim=8, decoder_depth=1,
                      decoder_num_heads=2).eval()


def test_csr_output_does_not_depend_on_the_order_the_visible_tokens_came_in():
    torch.manual_seed(0)
    dec = tiny_csr()
    b, length, keep = 2, 12, 4
    tokens = torch.randn(b, length, 8)
    cls, context = torch.randn(b, 1, 8), torch.randn(b, 1, 8)
    kept = torch.stack([torch.randperm(length)[:keep] for _ in range(b)])
    outs = []
    for _ in range(2):  # the same kept set, shuffled differently
        order = torch.stack([k[torch.randperm(keep)] for k in kept])
        rest = torch.stack([torch.tensor([i for i in range(length) if i not in set(o.tolist())]) for o in order])
        ids_shuffle = torch.cat([order, rest[:, torch.randperm(length - keep)]], 1)
        ids_restore = ids_shuffle.argsort(1)
        visible = torch.cat([cls, torch.gather(tokens, 1, order[..., None].expand(-1, -1, 8))], 1)
        outs.append(dec(visible, context, ids_restore))
    assert outs[0].shape == (b, length, 4 * 4 * 3)
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)


def test_csr_reads_the_context_class_token():
    torch.manual_seed(0)
    dec = tiny_csr()
    visible = torch.randn(1, 3, 8)
    ids_restore = torch.randperm(6)[None]
    a = dec(visible, torch.zeros(1, 1, 8), ids_restore)
    b = dec(visible, torch.ones(1, 1, 8), ids_restore)
    assert not torch.allclose(a, b)


def test_css_gives_one_logit_per_reference_patch_and_follows_the_query():
    torch.manual_seed(0)
    dec = CSSDecoder(embed_dim=8, hidden_dim=16, num_heads=2, mask_encoder_depth=1, mask_decoder_depth=2).eval()
    reference = torch.randn(3, 8, 5, 4)
    query = torch.randn(3, 7, 8)
    logits = dec(query, reference)
    assert logits.shape == (3, 5, 4)
    assert not torch.allclose(logits, dec(torch.randn(3, 7, 8), reference))
    logits.sum().backward()
    assert all(p.grad is not None for p in dec.parameters())


def test_csm_head_leaves_its_official_norm_frozen_and_unused():
    head = CSMDecoder(embed_dim=8, out_dim=16, hidden_dim=12, bottleneck_dim=4)
    out = head(torch.randn(5, 8))
    assert out.shape == (5, 16)
    out.sum().backward()
    assert not any(p.requires_grad for p in head.decoder_norm.parameters())
    assert not head.last_layer.weight_g.requires_grad
    assert all(p.grad is not None for p in head.parameters() if p.requires_grad)


def test_token_map_drops_the_class_token_row_major():
    tokens = torch.arange(1 + 6, dtype=torch.float32).view(1, 7, 1).expand(2, 7, 3)
    m = token_map(tokens, (2, 3))
    assert m.shape == (2, 3, 2, 3) and m[0, 0, 1, 0] == 4.0
    with pytest.raises(ValueError, match="grid"):
        token_map(tokens, (3, 3))
