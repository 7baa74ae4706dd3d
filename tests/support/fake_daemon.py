"""The real daemon's file system over a fake session:
`python fake_daemon.py MOUNTPOINT [--allow-other] [--private]
                      [--fail-activation-port P] [--fail-read-port P] [--activation-seconds S [--activation-marker FILE]]`."""
import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from procfs_fuse.drop_packet.control.controller import DropPacketEntry  # noqa: E402
from procfs_fuse.fs import ENTRY_PATH, serve, views  # noqa: E402
from tests.support.fakes import FakeSessions  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mountpoint")
    parser.add_argument("--allow-other", action="store_true")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--fail-activation-port", type=int)
    parser.add_argument("--fail-read-port", type=int)
    parser.add_argument("--activation-seconds", type=float, default=0)
    parser.add_argument("--activation-marker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    sessions = FakeSessions(args.fail_activation_port, args.fail_read_port, args.activation_seconds,
                            args.activation_marker)
    serve(views(ENTRY_PATH, DropPacketEntry(sessions)), args.mountpoint, fsname="drop-packet-test",
          allow_other=args.allow_other, private=args.private)
