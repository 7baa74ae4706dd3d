"""The canned reading of 10,000 flows (tests/support/canned.py), from the
tables' raw bytes to the three views: byte for byte the renderings kept in
tests/unit/data (made by the code before the one-path restructure)."""
import gzip
from pathlib import Path

import pytest

from procfs_fuse.drop_packet import json_view, metrics
from procfs_fuse.drop_packet.flows import Filters, Hop, HopName, Reading
from procfs_fuse.drop_packet.report import render
from procfs_fuse.drop_packet.stages import STAGES
from procfs_fuse.drop_packet.tables import Decoder, RawTable
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


@pytest.fixture(scope="module")
def reading():
    snapshot = Decoder(FlowKey, DropKey, Slot, canned.REASONS, Symbols()).snapshot(
        *(RawTable(*table) for table in canned.tables(STAGES)))
    names = {Hop(*hop): HopName(*name) for hop, name in canned.hop_names().items()}
    return Reading(True, Filters(), 40000, None, hooks_without_kprobes(), snapshot, canned.SINCE, names,
                   {Hop(*hop): moved for hop, moved in canned.DEVICES.items()}, canned.SOFTNET)


@pytest.mark.parametrize("view, render_view", [("txt", lambda r: render(r).encode()), ("json", json_view.render),
                                               ("prom", metrics.render)])
def test_the_canned_reading_renders_as_kept(reading, view, render_view):
    kept = gzip.decompress((DATA / ("canned_10k.%s.gz" % view)).read_bytes())
    assert render_view(reading) == kept
