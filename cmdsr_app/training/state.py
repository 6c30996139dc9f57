"""Qt-free state of the Training tab: the settings a user picks, the run folder and its
checkpoints, the progress line, and the call into the engine (the metric series the charts
draw are ``metrics``).

Kept apart from the widgets so the rules (what can be started, what a run folder holds) are
tested without a display.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmdsr_app.training.metrics import field_of, number_or_none

log = logging.getLogger(__name__)

DEGRADATION_PRESETS: tuple[tuple[str, str], ...] = (
    ("users", "Everyday photos (the shipped model's)"),
    ("paper", "Paper (blur 0.2-4.0, noise 0-75)"),
    ("mild", "Mild (light blur and noise)"),
    ("real", "Real photos (adds anisotropic blur and JPEG)"),
    ("paper-test", "Paper test setting (fixed blur 2.6, noise 15)"),
)
TRAIN_PRESETS: tuple[tuple[str, str], ...] = (
    ("users-cpu", "Studio recipe, CPU (the shipped model's)"),
    ("users", "Studio recipe, GPU"),
    ("cpu", "Paper, CPU (small and quick)"),
    ("reference", "Paper, GPU (the reference setup)"),
)
DEFAULT_STEPS = {"users-cpu": 2_000, "users": 20_000, "cpu": 2_000, "reference": 1_000_000}
# Where a run starts: the shipped model's weights (fine-tuning, the default: it already reads
# the damage) or a fresh network.
START_CHOICES: tuple[tuple[str, str], ...] = (
    ("shipped", "The shipped model (fine-tune it)"),
    ("scratch", "Scratch (a new network)"),
)
# Photos advised for a run; a folder with far fewer gets a warning (the model would learn
# those photos rather than photos in general).
ADVISED_PHOTOS = 50
FEW_PHOTOS = 20
# Validation interval of each preset (the engine's TrainConfig.preset(name).val_every; a test
# keeps the two equal): the Validation chart says when its first point comes without
# loading the engine.
VAL_EVERY = {"users-cpu": 500, "users": 5_000, "cpu": 1_000, "reference": 5_000}
# Steps each preset holds the ConditionNet fixed for (TrainConfig.preset(name).cond_freeze_steps,
# kept equal by a test): no contrastive loss or condition distances come before them, and the
# charts say so.
COND_FREEZE = {"users-cpu": 2_000, "users": 10_000, "cpu": 0, "reference": 0}
# "Stop after": a week at most, in minutes (0 = no limit); longer runs are paused by hand.
MAX_TIME_LIMIT_MIN = 7 * 24 * 60
CHECKPOINT_SUFFIXES = (".pt", ".pth")
LATEST_NAME = "latest.pt"
# A checkpoint's step from its file name: "step_000500.pt", "ckpt-500.pt", "last_500.pth".
_STEP_IN_NAME = re.compile(r"(\d+)(?=\.pth?$)")


class Phase(enum.Enum):
    """Where the tab's job is; decides which buttons are enabled."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSING = "pausing"  # cancel requested with the intent to resume; checkpoint being written
    PAUSED = "paused"
    STOPPING = "stopping"
    FINISHED = "finished"
    FAILED = "failed"


def _as_str(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


@dataclass
class TrainingSettings:
    """What the user chose; persisted between sessions as a plain dict."""

    hr_dir: str = ""
    val_dir: str = ""
    degradation: str = "users"
    steps: int = DEFAULT_STEPS["users-cpu"]
    preset: str = "users-cpu"
    start: str = "shipped"  # "shipped": fine-tune the shipped model; "scratch"
    run_dir: str = ""
    # The run the app last trained: offered for Resume after the app was closed mid-run.
    last_run_dir: str = ""
    # Pause each Start/Resume after this many minutes (0 = no limit), like
    # ``cmdsr train --time-limit``: for a user who can leave the machine training only so long.
    time_limit_min: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainingSettings:
        """Tolerant of a hand-edited or older settings file: a bad value keeps the default."""
        out = cls()
        if not isinstance(data, Mapping):
            return out
        for name in ("hr_dir", "val_dir", "run_dir", "last_run_dir"):
            setattr(out, name, _as_str(data.get(name), getattr(out, name)))
        if data.get("degradation") in {k for k, _ in DEGRADATION_PRESETS}:
            out.degradation = data["degradation"]
        if data.get("preset") in {k for k, _ in TRAIN_PRESETS}:
            out.preset = data["preset"]
        if data.get("start") in {k for k, _ in START_CHOICES}:
            out.start = data["start"]
        steps = data.get("steps")
        if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1:
            out.steps = steps
        limit = data.get("time_limit_min")
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit <= MAX_TIME_LIMIT_MIN:
            out.time_limit_min = limit
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "hr_dir": self.hr_dir,
            "val_dir": self.val_dir,
            "degradation": self.degradation,
            "steps": self.steps,
            "preset": self.preset,
            "start": self.start,
            "run_dir": self.run_dir,
            "last_run_dir": self.last_run_dir,
            "time_limit_min": self.time_limit_min,
        }

    def problems(self, *, resume: bool = False) -> list[str]:
        """Reasons the run cannot start, each one sentence a user can act on."""
        out: list[str] = []
        if not resume:
            if not self.hr_dir.strip():
                out.append("Choose a folder of high-resolution photos to train on.")
            elif not Path(self.hr_dir).is_dir():
                out.append(f"The photo folder {self.hr_dir} {_missing(self.hr_dir)}.")
        if self.val_dir.strip() and not Path(self.val_dir).is_dir():
            out.append(f"The validation folder {self.val_dir} {_missing(self.val_dir)}.")
        if self.steps < 1:
            out.append("The number of steps must be at least 1.")
        if not self.run_dir.strip():
            out.append("Choose a run folder for the checkpoints.")
        elif Path(self.run_dir).exists() and not Path(self.run_dir).is_dir():
            out.append(f"The run folder {self.run_dir} is a file; choose a folder.")
        elif resume and not list_checkpoints(self.run_dir):
            out.append(f"{self.run_dir} holds no checkpoint to resume from.")
        elif not resume and run_folder_in_use(self.run_dir):
            out.append(
                f"{self.run_dir} already holds a training run: press Resume to continue it, "
                "or choose a new run folder."
            )
        return out


def _missing(path: str) -> str:
    return "is a file, not a folder" if Path(path).exists() else "does not exist"


def new_run_dir(root: str | Path, now: float | None = None) -> Path:
    """A fresh, not yet existing folder under ``root`` named after the date and time."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate = root / f"run-{stamp}"
    n = 2
    while candidate.exists():
        candidate = root / f"run-{stamp}-{n}"
        n += 1
    return candidate


def run_folder_in_use(run_dir: str | Path) -> bool:
    """True if ``run_dir`` holds a checkpoint: starting afresh there would overwrite a user's
    earlier training (the engine refuses it too)."""
    return bool(list_checkpoints(run_dir))


# -- checkpoints ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointEntry:
    """A checkpoint file of a run, as listed for the user."""

    path: Path
    step: int | None
    size: int
    mtime: float

    def label(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.mtime))
        step = f"step {self.step:,}" if self.step is not None else "step ?"
        return f"{self.path.name}  ({step}, {self.size / 1e6:.1f} MB, {when})"


def checkpoint_step_from_name(path: str | Path) -> int | None:
    m = _STEP_IN_NAME.search(Path(path).name)
    return int(m.group(1)) if m else None


def list_checkpoints(run_dir: str | Path) -> list[CheckpointEntry]:
    """The model files of a run (in the folder and its ``checkpoints/``), oldest step first.

    Temp files of an interrupted atomic save (``.name.tmp``) and hidden files are skipped.
    """
    root = Path(run_dir)
    found: dict[Path, CheckpointEntry] = {}
    for folder in (root, root / "checkpoints"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") or path.suffix not in CHECKPOINT_SUFFIXES:
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            if not path.is_file() or st.st_size == 0:
                continue
            found[path] = CheckpointEntry(path, checkpoint_step_from_name(path), st.st_size, st.st_mtime)

    def order(e: CheckpointEntry) -> tuple[int, float, str]:
        # Named files without a step ("last.pt", "final.pt") sort by time among the rest.
        return (e.step if e.step is not None else -1, e.mtime, e.path.name)

    # The engine's latest.pt is a hard link to the newest step file: list it only when it is
    # all there is (a run copied without its checkpoints/ folder).
    latest = root / LATEST_NAME
    if latest in found and len(found) > 1:
        del found[latest]
    return sorted(found.values(), key=order)


def format_eta(seconds: float | None) -> str:
    """``"2 h 05 min"``, ``"4 min 10 s"``, ``"12 s"``; an unknown ETA reads ``"--"`` (the
    app's one ETA wording, :func:`cmdsr_app.eta.format_eta`)."""
    from cmdsr_app.eta import format_eta as app_format_eta

    return app_format_eta(seconds)


def format_time_limit(seconds: float) -> str:
    """A time limit as the user set it: ``"2 h"``, ``"1 h 30 min"``, ``"45 min"``, ``"20 s"``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    hours, minutes = divmod(s // 60, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def is_condition_report(progress: Any) -> bool:
    """A report of the condition stage (``engine.training.condition.ConditionProgress``),
    which comes before the SR steps in a run trained from scratch with the users recipe."""
    return field_of(progress, "blur_mae") is not None and field_of(progress, "l1") is None


def describe_progress(progress: Any, *, running: bool = True, eta_s: float | None = None,
                      steps_per_s: float | None = None) -> str:
    """One status line from a ``TrainProgress`` (or a condition-stage report); a run no
    longer running gets no ETA. ``eta_s`` and ``steps_per_s`` are the tab's smoothed
    estimates (:class:`cmdsr_app.eta.EtaEstimator`); the ETA reads "--" until there is one."""
    if is_condition_report(progress):
        step, total = field_of(progress, "step") or 0, field_of(progress, "total_steps") or 0
        parts = [f"Learning to read the damage first: step {step:,} of {total:,}"]
        rate = number_or_none(field_of(progress, "steps_per_s"))
        if rate is not None and rate > 0:
            parts.append(f"{rate:.2f} steps/s" if rate < 10 else f"{rate:.0f} steps/s")
        blur, noise = number_or_none(field_of(progress, "blur_mae")), number_or_none(field_of(progress, "noise_mae"))
        if blur and noise:  # 0 between the steps that measure them
            parts.append(f"off by {blur:.2f} in blur, {noise:.1f} in noise")
        return " · ".join(parts)
    step = field_of(progress, "step") or 0
    total = field_of(progress, "total_steps") or 0
    parts = [f"Step {step:,} of {total:,}"]
    rate = steps_per_s if steps_per_s is not None else number_or_none(field_of(progress, "steps_per_s"))
    if rate is not None and rate > 0:
        parts.append(f"{rate:.2f} steps/s" if rate < 10 else f"{rate:.0f} steps/s")
    if running:
        parts.append(f"ETA {format_eta(eta_s)}")
    wait = number_or_none(field_of(progress, "data_wait_share"))
    if wait is not None and wait > 0.3:
        # Tells the user the photos (decoding, disk), not the network, set the pace.
        parts.append(f"{wait:.0%} waiting for photos")
    l1 = number_or_none(field_of(progress, "l1"))
    if l1 is not None:
        parts.append(f"L1 {l1:.3g}")
    psnr = number_or_none(field_of(progress, "val_psnr"))
    if psnr is not None:
        parts.append(f"PSNR {psnr:.2f} dB")
    return " · ".join(parts)


# -- the job -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainRequest:
    """Everything one Start or Resume hands to the engine."""

    run_dir: Path
    hr_dir: Path | None
    val_dir: Path | None
    preset: str
    steps: int
    degradation: str
    resume: bool = False
    # A model file whose weights the run starts from (the shipped model when fine-tuning);
    # None: a fresh network.
    start_from: Path | None = None
    # ``key=value`` settings applied on top of the preset (e.g. a tiny model for tests, or a
    # power user's batch size), in the CLI's ``--set`` syntax.
    overrides: tuple[str, ...] = ()

    @classmethod
    def from_settings(
        cls, settings: TrainingSettings, *, resume: bool, overrides: Iterable[str] = ()
    ) -> TrainRequest:
        return cls(
            run_dir=Path(settings.run_dir),
            hr_dir=Path(settings.hr_dir) if settings.hr_dir.strip() else None,
            val_dir=Path(settings.val_dir) if settings.val_dir.strip() else None,
            preset=settings.preset,
            steps=settings.steps,
            degradation=settings.degradation,
            resume=resume,
            overrides=tuple(overrides),
            start_from=shipped_model_file() if settings.start == "shipped" else None,
        )


def build_train_config(request: TrainRequest) -> Any:
    """The engine's ``TrainConfig`` for a request.

    A new run: the preset, then the user's steps and degradation preset, then (fine-tuning)
    the start model's architecture and weights with no condition stage (the shipped model's
    condition already reads the damage), then the overrides.
    A resumed run: the config saved in its folder (the model cannot change mid-run), with the
    user's step count so a finished run can be extended.
    """
    import dataclasses

    from engine.config import apply_overrides
    from engine.degrade import DegradationConfig
    from engine.training.config import TrainConfig
    from engine.training.run_folder import load_run_config

    if request.resume:
        cfg = load_run_config(request.run_dir)
        return dataclasses.replace(cfg, steps=request.steps)
    cfg = TrainConfig.preset(request.preset)
    cfg = dataclasses.replace(
        cfg, steps=request.steps, degradation=DegradationConfig.preset(request.degradation)
    )
    if request.start_from is not None:
        from engine import read_checkpoint

        model, _, _ = read_checkpoint(request.start_from)
        cfg = dataclasses.replace(cfg, model=model, init_from=str(request.start_from),
                                  condition_steps=0)
    cfg = apply_overrides(cfg, request.overrides)
    explicit = any(o.split("=", 1)[0].strip() == "milestones" for o in request.overrides)
    if not explicit and any(m >= cfg.steps for m in cfg.milestones):
        # The presets' learning-rate milestones assume their own step count; with fewer steps
        # the rate would never decay. App users have no --set, so the app moves them to 75%
        # and 90% of the run, the engine's own suggestion.
        cfg = dataclasses.replace(cfg, milestones=milestones_for(cfg.steps))
    return cfg


def shipped_model_file() -> Path | None:
    """The shipped default model, the start of a fine-tuning run (None when not installed)."""
    import engine

    path = Path(engine.default_model_path())
    return path if path.exists() else None


def milestones_for(steps: int) -> tuple[int, ...]:
    """Learning-rate milestones at 75% and 90% of a run (none for a run too short to decay)."""
    marks = sorted({int(steps * 0.75), int(steps * 0.9)} - {0})
    return tuple(m for m in marks if m < steps)


def run_engine(request: TrainRequest, progress: Any, cancel: Any) -> Any:
    """Run (or resume) the engine's training loop for ``request``; blocks until it ends and
    returns the last checkpoint written (also when cancelled: the engine saves one first)."""
    from engine.training.loop import train

    cfg = build_train_config(request)
    return train(
        cfg,
        request.run_dir,
        data_dir=request.hr_dir,
        val_dir=request.val_dir,
        resume=request.resume,
        progress=progress,
        cancel=cancel,
        condition_progress=progress,  # the condition stage's reports come the same way
    )


@dataclass(frozen=True)
class RunSummary:
    """What a run folder says about itself, to fill the form when the user returns to it."""

    steps: int
    degradation: str | None  # preset name, or None for a custom distribution
    data_dir: str | None
    val_dir: str | None
    val_every: int | None = None
    cond_freeze_steps: int = 0
    conditioning: bool = True


def read_run_summary(run_dir: str | Path) -> RunSummary | None:
    """The saved config of an engine run folder, or None if it holds none (or it is
    unreadable: the folder is then treated as a new run)."""
    path = Path(run_dir)
    if not (path / "config.toml").is_file():
        return None
    try:
        from engine.errors import CmdsrError
        from engine.training.run_folder import load_run_config, load_run_info

        cfg = load_run_config(path)
        info = load_run_info(path)
    except (CmdsrError, OSError) as exc:
        log.warning("cannot read the run folder %s: %s", path, exc)
        return None
    name = cfg.degradation.preset_name()
    data = info.get("data_dir")
    val = info.get("val_dir")
    return RunSummary(
        steps=int(cfg.steps),
        degradation=None if name == "custom" else name,
        data_dir=data if isinstance(data, str) else None,
        val_dir=val if isinstance(val, str) else None,
        val_every=int(cfg.val_every) if cfg.val_every else None,
        cond_freeze_steps=int(cfg.cond_freeze_steps),
        conditioning=bool(cfg.model.conditioning),
    )


def preset_val_every(preset: str, overrides: Iterable[str] = ()) -> int | None:
    """The validation interval a new run gets: a ``val_every=N`` override, else the preset's."""
    for override in reversed(tuple(overrides)):
        key, _, value = override.partition("=")
        if key.strip() == "val_every" and value.strip().isdigit():
            return int(value)
    return VAL_EVERY.get(preset)


def preset_cond_freeze(preset: str, overrides: Iterable[str] = ()) -> int:
    """The steps a new run holds the ConditionNet fixed: a ``cond_freeze_steps=N`` override,
    else the preset's."""
    for override in reversed(tuple(overrides)):
        key, _, value = override.partition("=")
        if key.strip() == "cond_freeze_steps" and value.strip().isdigit():
            return int(value)
    return COND_FREEZE.get(preset, 0)


def condition_chart_hint(freeze: int, total: int, *, conditioning: bool = True) -> str:
    """What the empty Contrastive loss and Condition distances charts say: both come from the
    ConditionNet's own steps, which a run holding it fixed does not take (yet)."""
    if not conditioning:
        return "This model has no ConditionNet:\nnothing to chart"
    if freeze <= 0:
        return "Starts with the first step"
    if freeze >= total:
        return (f"None in this run: the ConditionNet\nis held fixed for all of its {total:,} "
                "steps\n(only the SR network learns)")
    return (f"None yet: the ConditionNet is held\nfixed for the first {freeze:,} steps\n"
            "(only the SR network learns until then)")


def validation_hint(val_dir: str, val_every: int | None, step: int, total: int) -> str:
    """What the empty Validation chart says: choose a folder, or when its first point comes."""
    if not val_dir:
        return "Choose a validation folder to see it"
    return first_validation_text(val_every, step, total)


def first_validation_text(val_every: int | None, step: int, total: int) -> str:
    """What the empty Validation chart says once a validation folder is chosen."""
    if not val_every or val_every <= 0:
        return "Evaluated during training"
    first = (step // val_every + 1) * val_every
    if first > total > 0:
        return f"Evaluated every {val_every:,} steps (first at step {first:,}, past the end)"
    return f"First evaluation at step {first:,} (every {val_every:,} steps)"
