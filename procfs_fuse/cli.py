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

MOUNT_EPILOG = """examples:
  python -m procfs_fuse mount mnt                        # root only
  python -m procfs_fuse mount --allow-other mnt          # others read the report, only root writes
  python -m procfs_fuse mount --allow-other --private mnt   # others see the files, read nothing
files:
  mnt/mooc/net/drop-packet        the report; takes commands (echo activate > ...)
  mnt/mooc/net/drop-packet.json   the same reading as JSON (jq)
  mnt/mooc/net/drop-packet.prom   the same as Prometheus text (node_exporter's textfile collector)"""

DOCTOR_EPILOG = """examples:
  python -m procfs_fuse doctor && echo activate > mnt/mooc/net/drop-packet
exits 1, with the reason on its last line, when activation cannot work here."""

BPF_SOURCE_EPILOG = """examples:
  python -m procfs_fuse bpf-source | head -1        # the compile flags (BTF offsets, record fields)
  python -m procfs_fuse bpf-source > /tmp/dp.c      # what BCC compiles, to read or diff"""


def cmd_mount(args):
    from .drop_packet.control.controller import DropPacketEntry
    from .drop_packet.capture.session import BccSession
    from .fs import ENTRY_PATH, serve, views

    from .drop_packet.model.names import HopNames
    from .drop_packet.model.workloads import NodeFiles

    entry = DropPacketEntry(BccSession, names=HopNames(node=NodeFiles(args.node_root)))
    try:
        serve(views(ENTRY_PATH, entry), args.mountpoint, allow_other=args.allow_other, private=args.private)
    finally:
        entry.close()  # unmounted or signalled: leave no hook behind
    return 0


def cmd_doctor(_args):
    from .drop_packet.capture import activation, hooks, program
    from .drop_packet.errors import ErrnoError
    from .kernel import bytecode, probe, tracefs
    from .kernel.btf import BTF, BTFError

    missing = []
    for name, check in probe.CHECKS:
        good, text = check()
        if not good and name not in probe.OPTIONAL:
            missing.append("%s: %s" % (name, text))
        print("%-9s %-8s %s" % (name + ":", "ok" if good else "MISSING", text))
    print("hook plan:")
    kernel = tracefs.KernelHooks()
    try:
        btf = BTF.from_file()
        _btf_id, why_no_direct_read = bytecode.rdonly_cast_id(btf)
        following = [program.nat_following(btf)[1]]  # conntrack's nf_conn, or why flows are not followed
    except (OSError, BTFError, ErrnoError) as e:
        why_no_direct_read, following = str(e), []
    plan = hooks.plan(lambda c: kernel.why_unavailable(c) or activation.why_not_here(c, why_no_direct_read))
    for hook in plan + following:
        print("  %s: %s" % (hook.stage, hook.describe()))
    if not any(h.chosen for h in plan):
        missing.append("no stage has a hook this kernel offers")
    print("verdict: " + ("activation can work here" if not missing else
                         "activation cannot work here: " + "; ".join(missing)))
    return 0 if not missing else 1


def cmd_bpf_source(_args):
    from .drop_packet.capture.program import generated_source

    sys.stdout.write(generated_source())
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="procfs_fuse", description="drop-packet: where packets vanish inside a Linux host",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub_options = dict(formatter_class=argparse.RawDescriptionHelpFormatter)
    mount = sub.add_parser("mount", help="mount and serve until unmounted or signalled", epilog=MOUNT_EPILOG,
                           **sub_options)
    mount.add_argument("mountpoint")
    mount.add_argument("--allow-other", action="store_true",
                       help="let other users in: they may read the report, never write")
    mount.add_argument("--private", action="store_true",
                       help="with --allow-other: the report too is for root only (mode 0600)")
    mount.add_argument("--node-root", default="/", metavar="PATH",
                       help="where the node's files are that name pods and containers (/var/log/pods, "
                            "/var/lib/docker): / here, /host in a container that mounts the node's root there")
    mount.set_defaults(run=cmd_mount)
    sub.add_parser("doctor", help="check BPF, BTF, tracefs, kprobes, headers, BCC, FUSE", epilog=DOCTOR_EPILOG,
                   **sub_options).set_defaults(run=cmd_doctor)
    sub.add_parser("bpf-source", help="print the BPF C and compile flags", epilog=BPF_SOURCE_EPILOG,
                   **sub_options).set_defaults(run=cmd_bpf_source)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "mount" and not os.path.isdir(args.mountpoint):
        parser.error("mount point %s is not a directory" % args.mountpoint)
    return args.run(args)
