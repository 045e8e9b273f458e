"""Shared pytest set-up: one thread, so that results and timings do not depend on the machine."""

import pathlib

import torch

torch.set_num_threads(1)

SITE = pathlib.Path(__file__).resolve().parent / "site"


def pytest_addoption(parser):
    parser.addoption("--site", action="store_true",
                     help="run only the browser tests of the built book (tests/site); needs `make book` first")


def pytest_ignore_collect(collection_path, config):
    """The browser tests need a built book: they run only with --site (`make test-site`)."""
    if not config.getoption("--site") and (collection_path == SITE or SITE in collection_path.parents):
        return True
    return None
