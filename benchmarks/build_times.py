"""Time the README's commands from a fresh clone, with the network off, and record them.

    python benchmarks/build_times.py

Clones the current commit into a temporary folder, installs the environment (this step needs the
package registries), then runs `make book`, `make test` and `make test-site` inside a network
namespace with only the loopback interface up (Jupyter kernels talk over 127.0.0.1), and writes
benchmarks/results/build.json: wall times, the slowest page of the book build (from the execution
cache) and the machine. Linux only; needs `unshare` (root or user namespaces).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from run import machine  # noqa: E402


def offline(command: str, cwd: pathlib.Path) -> float:
    start = time.perf_counter()
    subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && {command}"], cwd=cwd, check=True)
    return time.perf_counter() - start


def main():
    with tempfile.TemporaryDirectory() as tmp:
        clone = pathlib.Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        start = time.perf_counter()
        subprocess.run(["make", ".venv/.installed"], cwd=clone, check=True)
        install = time.perf_counter() - start
        book = offline("make book", clone)
        test = offline("make test", clone)
        site = offline("make test-site", clone)
        cache = subprocess.run([str(clone / ".venv/bin/python"), "-c",
                                "import json; from jupyter_cache import get_cache; print(json.dumps("
                                "{r.uri: r.data.get('execution_seconds') for r in "
                                "get_cache('_build/.jupyter_cache').list_cache_records()}))"],
                               cwd=clone, check=True, capture_output=True, text=True)
        pages = {str(pathlib.Path(k).relative_to(clone)): round(v, 1) for k, v in json.loads(cache.stdout).items()}
    slowest = max(pages, key=pages.get)
    result = {"install_s": round(install, 1), "make_book_s": round(book, 1), "make_test_s": round(test, 1),
              "make_test_site_s": round(site, 1),
              "pages": dict(sorted(pages.items())), "slowest_page": slowest, "slowest_page_s": pages[slowest],
              "network": "off (unshare -n, loopback only) for make book, make test and make test-site",
              "machine": machine("cpu")}
    out = ROOT / "benchmarks" / "results" / "build.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "pages"}, indent=1))


if __name__ == "__main__":
    main()
