"""Markers and the skip policy.

Root, FUSE and kernel tests skip only where the capability is truly absent;
with DROP_PACKET_NO_SKIP=1 (set by .ci/run) a skip is a failure, because CI's
machine has every capability.
"""
import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "root: needs root, FUSE or BPF")
    config.addinivalue_line("markers", "same_on_every_kernel: a kernel test of the project's own logic: lane 1 only")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("DROP_PACKET_NO_SKIP") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = "skipped where skips are not allowed (DROP_PACKET_NO_SKIP=1): %s" % (
            report.longrepr,)
