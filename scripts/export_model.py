"""Export a training run's latest checkpoint as a shippable model file (fp16 weights, no
optimiser state), e.g. the default models in resources/models/.

    python scripts/export_model.py RUN_DIR resources/models/cmdsr_x4.pt
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from engine.checkpoint import model_from_state, read_checkpoint, save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint other than latest.pt")
    parser.add_argument("--fp32", action="store_true",
                        help="keep fp32 weights (a starting point for further training)")
    args = parser.parse_args()
    src = args.checkpoint or args.run_dir / "latest.pt"
    cfg, state, meta = read_checkpoint(src)
    model = model_from_state(cfg, state, str(src))
    run_info = {}
    info_path = args.run_dir / "run.json"
    if info_path.exists():
        run_info = json.loads(info_path.read_text(encoding="utf-8"))
    step = int(meta.get("step", 0))
    extra = {
        "exported": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "training": {
            "run": args.run_dir.name,
            "step": step,
            "config_toml": (args.run_dir / "config.toml").read_text(encoding="utf-8")
            if (args.run_dir / "config.toml").exists() else "",
            "effective_batch": run_info.get("effective_batch", {}),
        },
    }
    out = save_model(model, args.out, step=step, half=not args.fp32, extra=extra)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, step {step}, "
          f"x{cfg.scale}, conditioning {'on' if cfg.conditioning else 'off'})")


if __name__ == "__main__":
    main()
