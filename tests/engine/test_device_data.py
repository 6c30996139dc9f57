"""Batches made on the device: the fused blur + bicubic equals engine.degrade, the patches
are crops of the photos with the 8 flips/transposes, and a step's batch is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data import synthetic_photo
from engine.degrade import (
    DegradationConfig,
    DegradationParams,
    bicubic_downsample,
    blur_params,
    degrade,
    gaussian_kernel,
)
from engine.errors import ConfigError
from engine.training.batches import augment
from engine.training.device_data import DevicePhotos, DeviceTaskSampler, FusedDownscale, apply_fused


def _photos(n: int = 3, size: tuple[int, int] = (120, 150), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [synthetic_photo(rng, *size) for _ in range(n)]


def _sampler(photos: list[np.ndarray], **kw: object) -> DeviceTaskSampler:
    args: dict[str, object] = dict(degradation=DegradationConfig(), scale=4, lr_patch=12,
                                   support_size=3, tasks_per_batch=4, seed=5)
    args.update(kw)
    return DeviceTaskSampler(DevicePhotos(photos, "cpu", min_size=48), **args)  # type: ignore[arg-type]


def _reference_lr(hr: np.ndarray, params: DegradationParams) -> np.ndarray:
    kernel = None if params.isotropic else gaussian_kernel(params)
    return bicubic_downsample(blur_params(hr, params, kernel), 4)


@pytest.mark.parametrize("sigma", [0.2, 0.7, 1.6, 2.6, 4.0])
def test_fused_downscale_equals_blur_then_bicubic(sigma: float) -> None:
    """Within 1e-3 on 0..255 everywhere (the patch's own reflect-101 border included)."""
    hr = _photos(1, (48, 48), seed=int(sigma * 10))[0]
    params = DegradationParams(15, sigma, sigma, 0.0, 0.0)
    fused = FusedDownscale(48, 4, 15)
    mv, mh = (torch.from_numpy(m)[None] for m in fused.task_matrices(params))
    x = torch.from_numpy(hr.transpose(2, 0, 1).copy()).float()[None, None]
    out = apply_fused(x, mv, mh)[0, 0].permute(1, 2, 0).numpy()
    ref = _reference_lr(hr, params)
    assert out.shape == ref.shape == (12, 12, 3)
    assert np.abs(out - ref).max() < 1e-3


@pytest.mark.parametrize(("sx", "sy", "angle"), [(0.8, 3.0, 0.4), (2.5, 1.2, 2.0)])
def test_fused_downscale_anisotropic(sx: float, sy: float, angle: float) -> None:
    hr = _photos(1, (48, 48), seed=3)[0]
    params = DegradationParams(15, sx, sy, angle, 0.0)
    mv, mh = (torch.from_numpy(m)[None] for m in FusedDownscale(48, 4, 15).task_matrices(params))
    assert mv.shape[1] > 1  # not separable: several terms
    x = torch.from_numpy(hr.transpose(2, 0, 1).copy()).float()[None, None]
    out = apply_fused(x, mv, mh)[0, 0].permute(1, 2, 0).numpy()
    ref = _reference_lr(hr, params)
    # away from the border: OpenCV filters large non-separable kernels through a DFT
    assert np.abs(out - ref)[2:-2, 2:-2].max() < 1e-3


def test_batch_format_and_degradation_match_engine_degrade() -> None:
    """Every LR patch of a noise-free batch equals engine.degrade on its HR patch (rounding
    may differ by one level where the float result sits on .5)."""
    s = _sampler(_photos(), degradation=DegradationConfig(noise_std=(0.0, 0.0)))
    batch = s.batch(7)
    assert batch["lr"].shape == (4, 6, 3, 12, 12) and batch["lr"].dtype == torch.uint8
    assert batch["hr"].shape == (4, 6, 3, 48, 48) and batch["hr"].dtype == torch.uint8
    assert batch["sigma"].shape == batch["noise"].shape == (4,)
    assert torch.all(batch["noise"] == 0)
    _, params = s.task_plan(7)
    rng = np.random.default_rng(0)
    for t in range(4):
        assert float(batch["sigma"][t]) == pytest.approx(params[t].sigma_x)
        for i in range(6):
            hr = batch["hr"][t, i].permute(1, 2, 0).numpy()
            ref = degrade(hr, params[t], 4, rng)
            lr = batch["lr"][t, i].permute(1, 2, 0).numpy().astype(np.float32)
            assert np.abs(lr - ref).max() <= 1
            assert np.mean(lr != ref) < 0.01


def test_patches_are_flipped_crops_of_their_task_photo() -> None:
    photos = _photos()
    s = _sampler(photos)
    images, _ = s.task_plan(3)
    hr = s.batch(3)["hr"]
    seen = set()
    for t in range(4):
        img = photos[images[t]]
        for i in range(6):
            patch = hr[t, i].permute(1, 2, 0).numpy()
            found = None
            for code in range(8):
                # undo the flip/transpose: augment's inverse is the same code with the
                # transpose applied first
                back = patch.transpose(1, 0, 2) if code & 4 else patch
                back = augment(augment(back, code & 3), 0)
                hits = np.argwhere(np.all(img[: img.shape[0] - 47, : img.shape[1] - 47] == back[0, 0], axis=2))
                for y, x in hits:
                    if np.array_equal(img[y : y + 48, x : x + 48], back):
                        found = code
                        break
                if found is not None:
                    break
            assert found is not None, f"task {t} patch {i} is not a crop of photo {images[t]}"
            seen.add(found)
    assert len(seen) >= 4  # flips and transposes are drawn


def test_same_step_same_batch_and_resume_state() -> None:
    photos = _photos()
    a, b = _sampler(photos), _sampler(photos)
    a.batch(0)
    first = a.batch(11)
    b.load_state_dict(a.state_dict())
    again = b.batch(11)  # a fresh sampler (a resumed run) reproduces the step
    for k in first:
        assert torch.equal(first[k], again[k])
    other = a.batch(12)
    assert not torch.equal(first["hr"], other["hr"])


def test_noise_and_quantisation_follow_the_task_std() -> None:
    photos = _photos()
    s = _sampler(photos, degradation=DegradationConfig(noise_std=(10.0, 40.0), noise_integer=True))
    batch = s.batch(2)
    _, params = s.task_plan(2)
    clean = s.degrade(batch["hr"], params, noise=False)
    for t in range(4):
        resid = batch["lr"][t].float() - clean[t]
        inside = (clean[t] > 5 + 3 * params[t].noise_std) & (clean[t] < 250 - 3 * params[t].noise_std)
        if inside.sum() > 200:
            assert float(resid[inside].std()) == pytest.approx(params[t].noise_std, rel=0.15)
        assert float(batch["noise"][t]) == params[t].noise_std


def test_paired_tasks_share_photos_and_degradations() -> None:
    s = _sampler(_photos(4), paired=True, tasks_per_batch=8)
    images, params = s.task_plan(4)
    for g in (0, 4):
        assert images[g] == images[g + 2] and images[g + 1] == images[g + 3]
        assert params[g] == params[g + 1] and params[g + 2] == params[g + 3]
        assert images[g] != images[g + 1] and params[g] != params[g + 2]
    with pytest.raises(ConfigError, match="groups of 4"):
        _sampler(_photos(), paired=True, tasks_per_batch=6)


def test_texture_candidates_prefer_detail() -> None:
    """Half of the photo flat, half textured: texture picking lands mostly on the texture."""
    rng = np.random.default_rng(0)
    img = np.full((96, 400, 3), 128, np.uint8)
    img[:, 200:] = rng.integers(0, 256, (96, 200, 3), dtype=np.uint8)
    share = []
    for k in (1, 8):
        s = _sampler([img], texture_candidates=k, texture_floor=0.05, tasks_per_batch=4)
        hr = torch.cat([s.batch(i)["hr"] for i in range(5)]).float()
        flat = (hr.flatten(2).std(dim=2) < 1).float().mean()
        share.append(float(flat))
    assert share[1] < share[0] * 0.5


def test_downscaled_copies_are_used() -> None:
    photos = DevicePhotos(_photos(2, (200, 200)), "cpu", min_size=48, hr_downscale=(0.25, 1.0))
    # 0.25 of 200 = 50 fits 48, so every level is kept
    assert photos.offset.numel() == 8
    assert int(photos.height.min()) == 50
    small = DevicePhotos(_photos(1, (60, 60)), "cpu", min_size=48, hr_downscale=(0.3, 0.5))
    assert int(small.height[0]) == 48  # none fits: the strongest downscale that does


def test_cpu_slices_equal_the_gpu_gather_for_every_flip_and_copy() -> None:
    """On the CPU patches are cut as views; they must be the pixels the gather takes."""
    s = _sampler(_photos())
    n = 64
    copy = torch.randint(0, int(s.photos.offset.numel()), (n,), generator=torch.Generator().manual_seed(1))
    y0, x0 = s._positions(copy, n)
    code = torch.arange(n) % 8
    assert torch.equal(s._sliced_patches(copy, y0, x0, code), s._gathered_patches(copy, y0, x0, code))


def test_mixed_ranks_in_one_batch_match_one_task_at_a_time() -> None:
    """Isotropic and anisotropic tasks are degraded in rank groups; each LR must equal the
    same task degraded alone."""
    s = _sampler(_photos(), degradation=DegradationConfig(aniso_prob=0.5, noise_std=(0.0, 0.0)),
                 tasks_per_batch=8)
    _, params = s.task_plan(3)
    assert len({s.fused.task_matrices(p)[0].shape[0] for p in params}) > 1
    hr = s.hr_patches([0, 1, 2, 0, 1, 2, 0, 1])[:, :2]
    together = s.degrade(hr, params, noise=False)
    for t in range(8):
        alone = s.degrade(hr[t:t + 1], params[t:t + 1], noise=False)
        torch.testing.assert_close(together[t:t + 1], alone, atol=1e-3, rtol=0)
