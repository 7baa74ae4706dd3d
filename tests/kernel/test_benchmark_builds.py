"""The overhead benchmark's programs load and attach on this kernel: the
floor, the register-add reference and "reading headers only" (a build of the
product's own packet reading and programs), and ours as an activation builds
them. The benchmark runs by hand; this keeps its builds from rotting."""
import contextlib

from benchmarks import configurations
from tests.kernel.conftest import wait_no_bpf_objects


def test_every_configuration_of_the_benchmark_attaches_and_detaches():
    with contextlib.ExitStack() as cleanup:
        configs = configurations.build(cleanup, have_bpftrace=False)
        for name, config in configs.items():
            with config():
                pass
        assert set(configs) >= {"floor", "active", "active, filtered out", "reading headers only",
                                configurations.ADDS_REFERENCE}
    wait_no_bpf_objects()
