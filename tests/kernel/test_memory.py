"""Kernel memory of the tables grows with flows, not with flows times possible
CPUs. Lane 2 boots its kernel with 64 possible CPUs on this 2-core machine, as
a big host has them: there a million flows in per-CPU tables were 6.4 GB."""
import pytest

from procfs_fuse.drop_packet.capture.settings import MAX_FLOWS, MAX_MAX_FLOWS
from tests.kernel.conftest import report, write
from tests.support.kernel_memory import PER_CPU, SHARED, possible_cpus, table_memory

pytestmark = pytest.mark.root

SHARED_ENTRY_BUDGET = 256  # bytes an entry may take: key, value and the table's own (208 on 6.18, 144 on 6.1)
SHARED_FIXED_BUDGET = 1 << 20  # the tables' own lists and headers
PER_CPU_BUDGET = 48 << 10  # a CPU's slots (256 x 144 bytes) and memos (64 x 40)


def test_the_tables_take_memory_for_flows_not_for_flows_times_cpus(f):
    # (one activation, at the largest max-flows: one is some 25 s in lane 2;
    # benchmarks/tables.py measures the default too)
    write(f, "%s %d" % (MAX_FLOWS, MAX_MAX_FLOWS))
    write(f, "activate")
    tables = table_memory()
    assert tables["dp_flows"][0] == MAX_MAX_FLOWS
    for name in set(SHARED) & set(tables):
        entries, memlock = tables[name]
        assert memlock <= entries * SHARED_ENTRY_BUDGET + SHARED_FIXED_BUDGET, (name, tables)
    assert sum(tables[name][1] for name in PER_CPU) <= possible_cpus() * PER_CPU_BUDGET, tables
    assert report(f)["tables"]["flows"][1] == MAX_MAX_FLOWS
    write(f, "deactivate")
    write(f, MAX_FLOWS)
