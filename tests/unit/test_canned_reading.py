"""The canned reading of 10,000 flows (tests/support/canned.py), from the
tables' raw bytes to the three views: byte for byte the renderings kept in
tests/unit/data (made by the code before the one-path restructure; since,
the JSON has drops.not_lost and each flow's nat, and drops_total's help says it leaves them out)."""
import gzip
from pathlib import Path

import pytest

from procfs_fuse.drop_packet.capture.flows import Hop
from procfs_fuse.drop_packet.capture.settings import Filters
from procfs_fuse.drop_packet.capture.stages import STAGES
from procfs_fuse.drop_packet.capture.tables import Decoder, RawTable
from procfs_fuse.drop_packet.model.diagnosis import HopName
from procfs_fuse.drop_packet.model.reading import reading_of
from procfs_fuse.drop_packet.views import VIEWS
from procfs_fuse.kernel.ksyms import Symbolizer
from tests.support import canned
from tests.support.layouts import DropKey, FlowKey, Slot
from tests.unit.test_report import hooks_without_kprobes

DATA = Path(__file__).parent / "data"


class Symbols:
    def __init__(self):
        self.symbolizer = Symbolizer(canned.KALLSYMS)

    def current(self):
        return self.symbolizer


def canned_reading():
    """The Reading of the canned tables, as an activation on this kernel's hooks would make it."""
    snapshot = Decoder(FlowKey, DropKey, Slot, canned.REASONS, Symbols()).snapshot(
        *(RawTable(*table) for table in canned.tables(STAGES)))
    names = {Hop(*hop): HopName(*name) for hop, name in canned.hop_names().items()}
    return reading_of(snapshot, True, Filters(), 40000, None, hooks_without_kprobes(), canned.SINCE, names,
                      {Hop(*hop): moved for hop, moved in canned.DEVICES.items()}, canned.SOFTNET)


@pytest.fixture(scope="module")
def reading():
    return canned_reading()


@pytest.mark.parametrize("kept, suffix", [("txt", ""), ("json", ".json"), ("prom", ".prom")])
def test_the_canned_reading_renders_as_kept(reading, kept, suffix):
    assert VIEWS[suffix].render(reading) == gzip.decompress((DATA / ("canned_10k.%s.gz" % kept)).read_bytes())
