"""The app's Qt-free state: regions and their validity, the queue, ETA, file names, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmdsr_app.settings import AppSettings, SettingsStore, config_dir
from cmdsr_app.state import (
    EntryStatus,
    ImageQueue,
    Region,
    RegionList,
    basic_region_problems,
    format_duration,
    output_name,
)


def engine_validator(regions, shape, size):
    from engine.inference.support import validate_regions

    return validate_regions([r.as_tuple() for r in regions], shape, size)


def test_region_from_corners_normalises_and_snaps() -> None:
    assert Region.from_corners(50.4, 40, 10.6, 9.5) == Region(11, 10, 39, 30)
    assert tuple(Region(1, 2, 3, 4)) == (1, 2, 3, 4)
    assert Region(0, 0, 40, 40).moved(70, -5).clamped(100, 80) == Region(60, 0, 40, 40)


def test_region_list_marks_small_and_outside_regions_invalid_with_engine_reasons() -> None:
    regions = RegionList(image_shape=(80, 100), patch_size=32, validator=engine_validator)
    changes: list[None] = []
    regions.changed.connect(lambda: changes.append(None))
    regions.add(Region(0, 0, 40, 40))
    regions.add(Region(10, 10, 20, 50))
    regions.add(Region(200, 200, 40, 40))
    assert len(changes) == 3
    problems = regions.problems
    assert problems[0] is None
    assert "smaller than a 32x32 patch" in problems[1]
    assert "outside" in problems[2]
    assert regions.valid_regions() == [Region(0, 0, 40, 40)]
    # Growing the small one makes it valid.
    regions.update(1, Region(10, 10, 40, 50))
    assert regions.problem(1) is None


def test_region_list_selection_follows_removal() -> None:
    regions = RegionList([Region(0, 0, 40, 40), Region(50, 0, 40, 40), Region(0, 40, 40, 40)],
                         image_shape=(100, 100))
    seen: list[int | None] = []
    regions.selection_changed.connect(seen.append)
    regions.select(2)
    regions.remove(0)
    assert regions.selected == 1
    regions.remove(1)
    assert regions.selected is None
    assert seen[-1] is None
    assert regions.hit(60, 10) == 0


def test_region_list_without_image_says_so() -> None:
    regions = RegionList([Region(0, 0, 40, 40)])
    assert regions.problems == ["no image loaded"]
    regions.set_context((64, 64))
    assert regions.problems == [None]


def test_a_broken_validator_does_not_lose_regions() -> None:
    def broken(regions, shape, size):
        raise RuntimeError("boom")

    regions = RegionList([Region(0, 0, 40, 40)], image_shape=(64, 64), validator=broken)
    assert regions.regions == [Region(0, 0, 40, 40)]
    assert "boom" in regions.problem(0)


def test_basic_problems_match_the_rule() -> None:
    assert basic_region_problems([Region(0, 0, 0, 5), Region(0, 0, 40, 40), Region(90, 0, 40, 40)],
                                 (64, 100), 32) == [
        "has no area (0x5)", None, "lies outside the 100x64 image"]


def test_queue_adds_once_and_tracks_current_and_status() -> None:
    queue = ImageQueue()
    added: list[tuple[int, int]] = []
    status: list[int] = []
    queue.added.connect(lambda first, count: added.append((first, count)))
    queue.status_changed.connect(status.append)
    assert queue.add_paths(["a.png", "b.png"]) == [0, 1]
    assert queue.add_paths(["b.png", "c.png"]) == [1, 2]
    assert added == [(0, 2), (2, 1)]
    queue.set_current(2)
    queue.set_status(2, EntryStatus.FAILED, "broken")
    assert status == [2] and queue[2].message == "broken"
    queue.remove(0)
    assert queue.current == 1 and queue.current_entry.name == "c.png"
    queue.remove(1)
    assert queue.current is None
    with pytest.raises(IndexError):
        queue.set_current(5)


def test_durations_read_as_time() -> None:
    assert format_duration(None) == "estimating…"
    assert format_duration(42) == "42 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3 * 3600 + 60) == "3 h 01 min"


def test_output_names_from_patterns() -> None:
    src = Path("/photos/holiday 01.jpg")
    assert output_name("{stem}_x{scale}", src, scale=4, method="cmdsr", ext="png", index=3) == "holiday 01_x4.png"
    assert output_name("{index:03d}-{method}", src, scale=4, method="cmdsr", ext=".tif", index=3) == "003-cmdsr.tif"
    for bad in ("{nope}", "{stem", "../{stem}", "   "):
        with pytest.raises(ValueError):
            output_name(bad, src, scale=4, method="cmdsr", ext="png", index=1)


def test_settings_round_trip_in_the_isolated_folder(isolated_settings: Path) -> None:
    assert config_dir() == isolated_settings
    store = SettingsStore()
    assert store.load() == AppSettings()  # nothing there yet: defaults
    settings = AppSettings(tile=256, output_format="jpg", quality=80, device="cpu")
    settings.add_recent_file("/a.png")
    settings.add_recent_file("/b.png")
    settings.add_recent_file("/a.png")
    settings.remember_regions("/a.png", [(1, 2, 40, 40)])
    store.save(settings)
    loaded = SettingsStore().load()
    assert loaded.tile == 256 and loaded.output_format == "jpg" and loaded.quality == 80
    assert loaded.recent_files == ["/a.png", "/b.png"]
    assert loaded.regions_for("/a.png") == [(1, 2, 40, 40)]


def test_damaged_or_odd_settings_fall_back_to_defaults(isolated_settings: Path) -> None:
    path = isolated_settings / "settings.json"
    path.write_text("{not json", encoding="utf-8")
    assert SettingsStore().load() == AppSettings()
    path.write_text(json.dumps({"tile": "big", "quality": 500, "output_format": "gif",
                                "unknown": 1, "device": "cuda:1"}), encoding="utf-8")
    loaded = SettingsStore().load()
    assert loaded.tile == 0 and loaded.quality == 100 and loaded.output_format == "png"
    assert loaded.device == "cuda:1"  # kept; the panel shows Auto where there is no such GPU
    for tile, expected in ((1, 0), (-5, 0), (31, 0), (32, 32), (100000, 100000)):
        path.write_text(json.dumps({"tile": tile}), encoding="utf-8")
        assert SettingsStore().load().tile == expected
