"""The CMDSR network: shapes, faithfulness to the authors' layout, folded == unfolded."""

from __future__ import annotations

import pytest
import torch

from engine import ModelConfig, build_model
from engine.errors import ConfigError
from engine.model import count_parameters
from tests.engine.authors_reference import reference_forward


def _inputs(cfg: ModelConfig, n: int, h: int, w: int, t: int | None = None):
    lr = torch.rand(n, 3, h, w) * 255
    support = torch.rand(t or n, cfg.support_size, 3, 12, 12) * 255
    return lr, support


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / (b.max() - b.min()))


def test_paper_model_has_the_authors_parameter_layout(seeded):
    model = build_model(ModelConfig())
    sd = model.state_dict()
    assert count_parameters(model) == 1_495_619
    assert len(sd) == 96
    assert sd["sr_net.upsampler.2.weight"].shape == (256, 64, 3, 3)
    assert sd["sr_net.modulations.modulations.19.weight"].shape == (64, 128)
    assert sd["condition_net.condition.0.weight"].shape == (64, 60, 3, 3)
    assert sd["condition_net.condition.7.bias"].shape == (128,)
    # untrained modulation ~ identity: bias 1
    assert torch.all(sd["sr_net.modulations.modulations.3.bias"] == 1)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape_for_every_scale_on_non_square_input(seeded, scale):
    cfg = ModelConfig(scale=scale, channels=8, blocks=2, support_size=3, cond_channels=8)
    model = build_model(cfg).eval()
    lr, support = _inputs(cfg, 2, 13, 21)
    with torch.no_grad():
        out = model(lr, support)
        folded = model.fold(support[:1])(lr[:1])
    assert out.shape == (2, 3, 13 * scale, 21 * scale)
    assert folded.shape == (1, 3, 13 * scale, 21 * scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_matches_independent_reference_forward(seeded, scale):
    cfg = ModelConfig(scale=scale, channels=16, blocks=3, support_size=4, cond_channels=16)
    model = build_model(cfg).eval()
    # non-trivial biases everywhere, as in trained weights
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.5)
    lr, support = _inputs(cfg, 1, 11, 17)
    with torch.no_grad():
        ours = model(lr, support)
        ref = reference_forward(model.state_dict(), lr, support)
    assert _rel(ours, ref) < 1e-4


def test_paper_size_model_matches_reference(seeded):
    model = build_model(ModelConfig()).eval()
    lr = torch.rand(1, 3, 20, 24) * 255
    support = torch.rand(1, 20, 3, 32, 32) * 255
    with torch.no_grad():
        assert _rel(model(lr, support), reference_forward(model.state_dict(), lr, support)) < 1e-4
        assert _rel(model.fold(support)(lr), reference_forward(model.state_dict(), lr, support)) < 1e-4


def test_folded_equals_unfolded_per_task(seeded, tiny_config):
    model = build_model(tiny_config).eval()
    with torch.no_grad():
        for p in model.sr_net.modulations.parameters():
            p.add_(torch.randn_like(p))
    # 2 tasks x 3 images: images of a task share that task's condition
    lr, support = _inputs(tiny_config, 6, 10, 14, t=2)
    with torch.no_grad():
        batched = model(lr, support)
        for t in range(2):
            folded = model.fold(support[t : t + 1])(lr[3 * t : 3 * t + 3])
            assert _rel(folded, batched[3 * t : 3 * t + 3]) < 1e-4


def test_modulation_scales_the_input_channel_axis(seeded):
    cfg = ModelConfig(scale=2, channels=4, blocks=1, support_size=1, cond_channels=4)
    model = build_model(cfg).eval()
    conv = model.sr_net.backbone[0].conv1
    x = torch.rand(1, 4, 6, 6)
    scales = torch.tensor([[2.0, 0.0, 1.0, 0.5]])
    with torch.no_grad():
        modulated = conv(x, scales)
        # scaling input channel c of the weight == scaling input channel c of x
        expected = conv(x * scales[0][None, :, None, None])
        assert torch.allclose(modulated, expected, atol=1e-5)
        # zero scale on channel 1: that input channel has no influence
        x2 = x.clone()
        x2[:, 1] += 100
        assert torch.allclose(conv(x2, scales), modulated, atol=1e-4)
        # it is not the output axis: output channel 1 is still live
        assert modulated[:, 1].abs().sum() > 0


def test_known_modulation_through_the_linear_layers(seeded):
    cfg = ModelConfig(scale=2, channels=4, blocks=1, support_size=1, cond_channels=4)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for m in model.sr_net.modulations.modulations:
            m.weight.zero_()
            m.bias.copy_(torch.tensor([1.0, 0.0, 1.0, 1.0]))
    support = torch.rand(1, 1, 3, 8, 8) * 255
    lr = torch.rand(1, 3, 6, 6) * 255
    with torch.no_grad():
        out = model(lr, support)
        # the same network without conditioning but with input channel 1 of both convs zeroed
        plain = build_model(ModelConfig(scale=2, channels=4, blocks=1, conditioning=False))
        state = {k: v for k, v in model.state_dict().items() if k in plain.state_dict()}
        state["sr_net.backbone.0.conv1.weight"] = state["sr_net.backbone.0.conv1.weight"].clone()
        state["sr_net.backbone.0.conv2.weight"] = state["sr_net.backbone.0.conv2.weight"].clone()
        state["sr_net.backbone.0.conv1.weight"][:, 1] = 0
        state["sr_net.backbone.0.conv2.weight"][:, 1] = 0
        plain.load_state_dict(state)
        assert torch.allclose(out, plain(lr), atol=1e-3)


def test_conditioning_off_is_a_plain_basenet(seeded):
    cfg = ModelConfig(scale=4, channels=8, blocks=2, conditioning=False)
    model = build_model(cfg).eval()
    assert model.condition_net is None
    assert not any("modulations" in k or "condition_net" in k for k in model.state_dict())
    lr = torch.rand(1, 3, 9, 12) * 255
    with torch.no_grad():
        out = model(lr)
        assert out.shape == (1, 3, 36, 48)
        assert _rel(model.fold()(lr), out) < 1e-4
        assert _rel(reference_forward(model.state_dict(), lr, None), out) < 1e-4


def test_support_shape_is_checked(tiny_config):
    model = build_model(tiny_config)
    with pytest.raises(ValueError, match="support must be"):
        model(torch.rand(1, 3, 8, 8), torch.rand(1, 5, 3, 8, 8))
    with pytest.raises(ValueError, match="support set is required"):
        model(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"scale": 5}, "scale"), ({"channels": 0}, "channels"), ({"support_size": -1}, "support_size")],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)


def test_training_path_backpropagates_into_both_networks(seeded, tiny_config):
    model = build_model(tiny_config)
    lr, support = _inputs(tiny_config, 4, 8, 8, t=2)
    model(lr, support).mean().backward()
    assert model.condition_net.condition[0].weight.grad.abs().sum() > 0
    assert model.sr_net.modulations.modulations[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(4, 7), (10, 10), (19, 33)])
def test_composite_tail_equals_the_layer_by_layer_tail(seeded, scale, size):
    cfg = ModelConfig(scale=scale, channels=16, blocks=2, support_size=2, cond_channels=8)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.add_(torch.randn_like(p))
    support = torch.rand(1, 2, 3, 8, 8) * 255
    lr = torch.rand(1, 3, *size) * 255
    with torch.inference_mode():
        folded = model.fold(support)
        composite = folded(lr)
        folded.composite_tail = False
        staged = folded(lr)
    assert composite.shape == (1, 3, size[0] * scale, size[1] * scale)
    assert _rel(composite, staged) < 1e-5
