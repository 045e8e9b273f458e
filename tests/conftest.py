"""Shared pytest set-up: one thread, so that results and timings do not depend on the machine."""

import torch

torch.set_num_threads(1)
