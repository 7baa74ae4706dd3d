"""Command line: mount the file system, check the machine, show the BPF C."""
import argparse
import logging
import os
import sys

EPILOG = """examples:
  python -m procfs_fuse mount mnt           # serve mnt/mooc/net/drop-packet (foreground)
  python -m procfs_fuse mount --allow-other mnt   # others may read, only root writes
  python -m procfs_fuse doctor              # what this kernel offers, and the hook plan
  python -m procfs_fuse bpf-source          # the BPF C and flags BCC compiles
then:
  echo activate > mnt/mooc/net/drop-packet
  cat mnt/mooc/net/drop-packet
usually through ./mount.sh, which also installs what is missing."""


def cmd_mount(args):
    from .drop_packet.controller import DropPacketEntry
    from .drop_packet.session import BccSession
    from .fs import ENTRY_PATH, serve, views

    entry = DropPacketEntry(BccSession)
    try:
        serve(views(ENTRY_PATH, entry), args.mountpoint, allow_other=args.allow_other, private=args.private)
    finally:
        entry.close()  # unmounted or signalled: leave no hook behind
    return 0


def cmd_doctor(_args):
    from .drop_packet import hooks
    from .kernel import probe, tracefs

    ok = True
    for name, check in probe.CHECKS:
        good, text = check()
        ok = ok and (good or name in probe.OPTIONAL)
        print("%-9s %-8s %s" % (name + ":", "ok" if good else "MISSING", text))
    print("hook plan:")
    kernel = tracefs.KernelHooks()
    for hook in hooks.plan(kernel.why_unavailable):
        print("  %s: %s" % (hook.stage, hook.describe()))
    return 0 if ok else 1


def cmd_bpf_source(_args):
    from .drop_packet.activation import generated_source

    sys.stdout.write(generated_source())
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="procfs_fuse", description="drop-packet: where packets vanish inside a Linux host",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    mount = sub.add_parser("mount", help="mount and serve until unmounted or signalled")
    mount.add_argument("mountpoint")
    mount.add_argument("--allow-other", action="store_true",
                       help="let other users in: they may read the report, never write")
    mount.add_argument("--private", action="store_true",
                       help="with --allow-other: the report too is for root only (mode 0600)")
    mount.set_defaults(run=cmd_mount)
    sub.add_parser("doctor", help="check BPF, BTF, tracefs, kprobes, headers, BCC, FUSE").set_defaults(
        run=cmd_doctor)
    sub.add_parser("bpf-source", help="print the BPF C and compile flags").set_defaults(run=cmd_bpf_source)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "mount" and not os.path.isdir(args.mountpoint):
        parser.error("mount point %s is not a directory" % args.mountpoint)
    return args.run(args)
