"""The real daemon's file system over a fake tracer:
`python fake_daemon.py MOUNTPOINT [--allow-other] [--private]`."""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from procfs_fuse.drop_packet.controller import DropPacketEntry  # noqa: E402
from procfs_fuse.fs import ENTRY_PATH, serve  # noqa: E402
from tests.fakes import FakeSession  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve({ENTRY_PATH: DropPacketEntry(FakeSession)}, sys.argv[1], fsname="drop-packet-test",
          allow_other="--allow-other" in sys.argv, private="--private" in sys.argv)
