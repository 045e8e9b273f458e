"""Throughput of the self-attention step, against the floor of a plain torch implementation.

    python benchmarks/run.py            # CPU; and the GPU too when torch sees one

A *step* is one post-LN layer, ``x <- normalize(x + dt * softmax(beta x x^T) x)``, i.e. one step
of the ``layer`` scheme. On the CPU the floor is the same step written directly with dense torch
operations; on a GPU it is the fused kernel ``scaled_dot_product_attention`` followed by the
normalisation. Results go to ``benchmarks/results/<device>.json`` with a description of the
machine; the book's appendix page "Performance" shows them. Timings use
``torch.utils.benchmark.Timer.blocked_autorange``, which synchronises CUDA and picks the number of
repetitions itself.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from nnips import attention, sphere

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
BETA, DT = 1.0, 0.1


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "date": datetime.date.today().isoformat()}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def seconds(fn, min_run_time) -> float:
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def compare(ours, floor, min_run_time, rounds=3):
    """Best median of each over interleaved rounds, so that a busy moment hits both alike."""
    times = [(seconds(ours, min_run_time), seconds(floor, min_run_time)) for _ in range(rounds)]
    return min(t[0] for t in times), min(t[1] for t in times)


def dense_floor(x):
    """The plain dense step: what any implementation has to compute."""
    y = x + DT * (torch.softmax(BETA * x @ x.mT, dim=-1) @ x)
    return y / y.norm(dim=-1, keepdim=True)


def fused_floor(x):
    """The fused kernel step: the fastest way torch offers on a GPU."""
    y = x + DT * F.scaled_dot_product_attention(x, x, x, scale=BETA)
    return y / y.norm(dim=-1, keepdim=True)


def cpu_rows():
    field = attention.SelfAttention(BETA)
    rows = []
    for d in (3, 64):
        for n in (256, 1024, 2048):
            x = sphere.uniform(n, d, seed=0)
            ours, floor = compare(lambda: field.layer_step(x, DT), lambda: dense_floor(x), 0.5)
            rows.append({"n": n, "d": d, "dtype": "float64", "nnips_s": ours, "floor_s": floor,
                         "ratio": ours / floor, "floor": "dense torch"})
            print(f"cpu n={n:5d} d={d:3d}: nnips {ours * 1e3:8.3f} ms, dense {floor * 1e3:8.3f} ms, "
                  f"ratio {ours / floor:.3f}")
    return rows


def gpu_rows():
    field = attention.SelfAttention(BETA)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for n in (4096, 16384, 65536, 262144, 1_000_000):
            x = sphere.uniform(n, 64, seed=0, dtype=torch.float32, device="cuda").to(dtype)
            torch.cuda.reset_peak_memory_stats()
            field.layer_step(x, DT)
            peak = torch.cuda.max_memory_allocated() / 2**30
            ours, floor = compare(lambda: field.layer_step(x, DT), lambda: fused_floor(x), 1.0)
            rows.append({"n": n, "d": 64, "dtype": str(dtype).removeprefix("torch."), "nnips_s": ours,
                         "floor_s": floor, "ratio": ours / floor, "floor": "fused SDPA",
                         "peak_memory_gib": round(peak, 3)})
            print(f"cuda {dtype} n={n:8d}: nnips {ours * 1e3:9.3f} ms, fused {floor * 1e3:9.3f} ms, "
                  f"ratio {ours / floor:.3f}, peak {peak:.2f} GiB")
            del x
    return rows


def write(device, rows):
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{device}.json"
    out.write_text(json.dumps({"benchmark": "self-attention layer step", "beta": BETA, "dt": DT,
                               "machine": machine(device), "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


def main():
    write("cpu", cpu_rows())
    if torch.cuda.is_available():
        write("cuda", gpu_rows())


if __name__ == "__main__":
    main()
