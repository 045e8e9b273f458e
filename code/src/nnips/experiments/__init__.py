"""Paper-scale experiments as a command line: ``python -m nnips.experiments NAME --device cuda``.

Each experiment is cut into *units* (one layer count, one beta, one seed block...). A unit's result
is saved as ``OUT/NAME/units/KEY.npz`` as soon as it is computed, so an interrupted run resumes where
it stopped. When all units are done their results are combined into ``OUT/NAME/NAME.npz`` and drawn
into ``OUT/NAME/NAME.png``. A tqdm bar shows progress over units.

An experiment is a class registered with :func:`register`, with ``add_arguments(parser)``,
``units(args)``, ``run_unit(key, args)``, ``summarise(results, args)`` and ``plot(summary, args)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import pkgutil
import sys

import numpy as np
import torch
from tqdm import tqdm

__all__ = ["EXPERIMENTS", "register", "main", "run"]

EXPERIMENTS: dict = {}


def register(cls):
    """Class decorator adding an experiment to :data:`EXPERIMENTS` under ``cls.name``."""
    EXPERIMENTS[cls.name] = cls
    return cls


def _load_all():
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def _parser(experiment):
    p = argparse.ArgumentParser(prog=f"python -m nnips.experiments {experiment.name}",
                                description=experiment.__doc__)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32", "bfloat16"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results", help="output folder (default ./results)")
    p.add_argument("--fresh", action="store_true", help="ignore saved units and recompute")
    experiment.add_arguments(p)
    return p


def run(name: str, argv: list[str]) -> pathlib.Path:
    """Run experiment ``name`` with command-line arguments ``argv``; returns the summary ``.npz`` path."""
    _load_all()
    if name not in EXPERIMENTS:
        raise SystemExit(f"unknown experiment {name!r}; available: {', '.join(sorted(EXPERIMENTS))}")
    experiment = EXPERIMENTS[name]()
    args = _parser(experiment).parse_args(argv)
    args.torch_dtype = getattr(torch, args.dtype)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for but torch sees no CUDA device")
    folder = pathlib.Path(args.out) / name
    (folder / "units").mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("torch_dtype", "fresh", "out")}
    _check_settings(folder / "settings.json", settings, args.fresh)
    results = {}
    for key in tqdm(experiment.units(args), desc=name, unit="unit"):
        path = folder / "units" / f"{key}.npz"
        if path.exists() and not args.fresh:
            results[key] = dict(np.load(path))
            continue
        results[key] = {k: np.asarray(v) for k, v in experiment.run_unit(key, args).items()}
        np.savez(path, **results[key])
    summary = experiment.summarise(results, args)
    out = folder / f"{name}.npz"
    np.savez(out, **summary)
    experiment.plot(summary, args).savefig(folder / f"{name}.png", dpi=150, bbox_inches="tight")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return out


def _check_settings(path, settings, fresh):
    """Refuse to mix saved units computed with other settings, unless --fresh is given."""
    if path.exists() and not fresh:
        saved = json.loads(path.read_text())
        if saved != settings:
            raise SystemExit(f"{path.parent} holds results for other settings {saved}; "
                             "use another --out or --fresh")
    path.write_text(json.dumps(settings, indent=1, sort_keys=True))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    _load_all()
    if not argv or argv[0] in ("-h", "--help", "list"):
        print("usage: python -m nnips.experiments NAME [options]   (NAME --help for its options)\n")
        for name, cls in sorted(EXPERIMENTS.items()):
            print(f"  {name:20s} {(cls.__doc__ or '').strip().splitlines()[0]}")
        return
    run(argv[0], argv[1:])
