"""The dense modulated conv (scale input channels per sample, one plain conv) is the same
function as the former grouped conv with per-task weights: values and gradients."""

from __future__ import annotations

import pytest
import torch

from engine.model import CMDSR, EqualConv2d, ModelConfig, _grouped_modulated_conv


@pytest.mark.parametrize(("tasks", "per_task", "h", "w"), [(1, 3, 7, 11), (3, 2, 9, 5), (4, 1, 6, 6)])
def test_dense_equals_grouped_values_and_gradients(tasks: int, per_task: int, h: int, w: int) -> None:
    torch.manual_seed(0)
    conv = EqualConv2d(5, 6)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(tasks * per_task, 5, h, w, dtype=torch.float64)
    mod = torch.rand(tasks, 5, dtype=torch.float64) + 0.5
    conv = conv.double()

    outs, grads = [], []
    for fn in (lambda a, m: conv(a, m), lambda a, m: _grouped_modulated_conv(conv, a, m)):
        conv.zero_grad()
        a = x.clone().requires_grad_(True)
        m = mod.clone().requires_grad_(True)
        out = fn(a, m)
        # a non-uniform upstream gradient, so every output position counts differently
        (out * torch.linspace(-1, 2, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        assert conv.weight.grad is not None and conv.bias.grad is not None
        assert a.grad is not None and m.grad is not None
        outs.append(out.detach())
        grads.append([a.grad, m.grad, conv.weight.grad.clone(), conv.bias.grad.clone()])
    assert outs[0].shape == (tasks * per_task, 6, h, w)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)
    for g_dense, g_grouped in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(g_dense, g_grouped, rtol=1e-10, atol=1e-10)


def test_each_task_gets_its_own_modulation() -> None:
    """Sample i of task t equals a plain conv with task t's modulated weight."""
    torch.manual_seed(1)
    conv = EqualConv2d(4, 3)
    x = torch.randn(6, 4, 8, 5)
    mod = torch.rand(3, 4) + 0.5
    out = conv(x, mod)
    for i in range(6):
        w = conv.effective_weight() * mod[i // 2][None, :, None, None]
        ref = torch.nn.functional.conv2d(x[i : i + 1], w, conv.bias, padding=1)
        torch.testing.assert_close(out[i : i + 1], ref, rtol=1e-5, atol=1e-5)


def test_channels_last_input_gives_the_same_result() -> None:
    torch.manual_seed(2)
    conv = EqualConv2d(8, 8)
    x = torch.randn(4, 8, 10, 7)
    mod = torch.rand(2, 8) + 0.5
    ref = conv(x, mod)
    out = conv(x.contiguous(memory_format=torch.channels_last), mod)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_training_forward_matches_the_folded_inference_path() -> None:
    """The whole conditioned network (dense training path) against ``fold`` (plain convs with
    the modulations multiplied into the weights), per task."""
    torch.manual_seed(3)
    model = CMDSR(ModelConfig(channels=8, blocks=2, support_size=2, cond_channels=8)).eval()
    lr = torch.rand(4, 3, 6, 9) * 255
    support = torch.rand(2, 2, 3, 8, 8) * 255
    with torch.no_grad():
        out = model(lr, support)
        for t in range(2):
            folded = model.fold(support[t : t + 1])
            folded.composite_tail = False
            torch.testing.assert_close(out[2 * t : 2 * t + 2], folded(lr[2 * t : 2 * t + 2]),
                                       rtol=1e-4, atol=1e-3)
