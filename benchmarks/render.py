#!/usr/bin/env python3
"""What user space costs a read, without a kernel: the canned reading of
10,000 flows of two hops (tests/support/canned.py) decoded from its tables'
bytes by a decoder that read them before (as the daemon's next `cat`), made a
Reading, and rendered by each view, the cycle collector paused as the daemon
pauses it. Medians of --rounds.
    .venv/bin/python benchmarks/render.py [--rounds 20]"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from procfs_fuse.drop_packet.capture.flows import Hop  # noqa: E402
from procfs_fuse.drop_packet.capture.settings import Filters  # noqa: E402
from procfs_fuse.drop_packet.capture.stages import STAGES  # noqa: E402
from procfs_fuse.drop_packet.capture.tables import Decoder, RawTable  # noqa: E402
from procfs_fuse.drop_packet.control.controller import PausedCollector  # noqa: E402
from procfs_fuse.drop_packet.model.diagnosis import HopName  # noqa: E402
from procfs_fuse.drop_packet.model.reading import reading_of  # noqa: E402
from procfs_fuse.drop_packet.views import VIEWS  # noqa: E402
from tests.support import canned  # noqa: E402
from tests.support.layouts import DropKey, FlowKey, Slot  # noqa: E402
from tests.unit.test_canned_reading import Symbols  # noqa: E402
from tests.unit.test_report import hooks_without_kprobes  # noqa: E402


def timed(times, step, action):
    started = time.perf_counter()
    result = action()
    times.setdefault(step, []).append(time.perf_counter() - started)
    return result


def offline_ms(rounds):
    """{step: median ms} of decode, reading and each view ("", ".json", ".prom"), and of a whole
    "cat", "json" and "scrape"."""
    tables = [RawTable(*table) for table in canned.tables(STAGES)]
    names = {Hop(*hop): HopName(*name) for hop, name in canned.hop_names().items()}
    decoder = Decoder(FlowKey, DropKey, Slot, canned.REASONS, Symbols())
    decoder.snapshot(*tables)  # the daemon met these keys before
    times, collector = {}, PausedCollector()
    for _ in range(rounds):
        for suffix, view in VIEWS.items():  # each view of its own reading, as each open has
            with collector.paused():
                snapshot = timed(times, "decode", lambda: decoder.snapshot(*tables))
                reading = timed(times, "reading", lambda: reading_of(
                    snapshot, True, Filters(), 40000, None, hooks_without_kprobes(), canned.SINCE, names))
                timed(times, suffix, lambda: view.render(reading))
    ms = {step: statistics.median(taken) * 1000 for step, taken in times.items()}
    read = ms["decode"] + ms["reading"]
    return dict(ms, cat=read + ms[""], json=read + ms[".json"], scrape=read + ms[".prom"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    ms = offline_ms(args.rounds)
    print("canned reading, %d flows of 2 hops, medians of %d rounds (ms): decode %.0f, reading %.0f, text %.0f, "
          "JSON %.0f, Prometheus %.0f; so a cat %.0f, a JSON %.0f, a scrape %.0f"
          % (canned.FLOWS, args.rounds, ms["decode"], ms["reading"], ms[""], ms[".json"], ms[".prom"],
             ms["cat"], ms["json"], ms["scrape"]))


if __name__ == "__main__":
    main()
