"""Rewrite requirements.txt with the exact versions installed in the current environment.

    .venv/bin/pip install NEWPACKAGE && .venv/bin/python tools/pin_requirements.py NEWPACKAGE

The first section of requirements.txt lists what the book and the package use directly (plus any
names given on the command line); the second pins everything they pull in. Both take their versions
from `pip freeze`, so the file always describes an environment that was actually installed and
tested. Local build tags (torch's "+cpu") are dropped: the tag depends on the index, not the code.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
DIRECT = "# What the book and the package use directly"
REST = "# Everything they pull in, pinned so that a build next year resolves the same environment"


def normal(name: str) -> str:
    return name.lower().replace("_", "-")


def main(extra: list[str]) -> None:
    text = REQUIREMENTS.read_text()
    header = text.split(DIRECT)[0]
    direct_block = text.split(DIRECT)[1].split(REST)[0]
    direct = [line.split("==")[0] for line in direct_block.split() if "==" in line] + extra
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            check=True, capture_output=True, text=True).stdout
    pins = {}
    for line in freeze.splitlines():
        if "==" in line:
            name, version = line.split("==")
            pins[normal(name)] = (name, version.split("+")[0])
    missing = [d for d in direct if normal(d) not in pins]
    if missing:
        raise SystemExit(f"not installed: {missing}")
    wanted = {normal(d) for d in direct}
    direct_lines = [f"{pins[normal(d)][0]}=={pins[normal(d)][1]}" for d in dict.fromkeys(direct)]
    rest_lines = [f"{n}=={v}" for key, (n, v) in sorted(pins.items()) if key not in wanted and key != "nnips"]
    REQUIREMENTS.write_text(header + DIRECT + "\n" + "\n".join(direct_lines) + "\n\n" + REST + "\n"
                            + "\n".join(rest_lines) + "\n")
    print(f"pinned {len(direct_lines)} direct and {len(rest_lines)} other packages")


if __name__ == "__main__":
    main(sys.argv[1:])
