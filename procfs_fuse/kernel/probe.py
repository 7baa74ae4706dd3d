"""What this machine offers, for `procfs_fuse doctor`. Each check returns (ok, text)."""
import ctypes
import os
import shutil
import struct

from . import bytecode, cgroup, headers, tracefs
from .bpfsys import ATTR_SIZE, BPF_MAP_CREATE, bpf, load_program
from .btf import VMLINUX_BTF, BTF, BTFError

_BPF_MAP_TYPE_ARRAY = 2
_BPF_PROG_TYPE_CGROUP_SKB = 8
_PASS_PROGRAM = struct.pack("<BBhiBBhi", 0xB7, 0, 0, 1, 0x95, 0, 0, 0)  # r0 = 1; exit


def check_bpf():
    attr = ctypes.create_string_buffer(struct.pack("<IIII", _BPF_MAP_TYPE_ARRAY, 4, 4, 1), ATTR_SIZE)
    try:
        os.close(bpf(BPF_MAP_CREATE, attr))
    except OSError as e:
        return False, "bpf() refused: %s" % e
    return True, "bpf() creates maps"


def check_direct_read():
    try:
        _btf_id, why_not = bytecode.rdonly_cast_id(BTF.from_file())
    except (OSError, BTFError) as e:
        return False, str(e)
    if why_not:
        return False, "%s: headers are read with bpf_probe_read_kernel" % why_not
    return True, "bpf_rdonly_cast: packet headers are read by direct loads"


def check_btf():
    try:
        member = BTF.from_file().struct_member("sk_buff", "len")
    except (OSError, BTFError) as e:
        return False, "%s: %s" % (VMLINUX_BTF, e)
    return True, "%s (sk_buff.len at offset %d)" % (VMLINUX_BTF, member.offset)


def check_cgroup_skb():
    """The socket stages' fallback: a cgroup_skb program on the cgroup v2 root."""
    try:
        os.close(load_program(_BPF_PROG_TYPE_CGROUP_SKB, _PASS_PROGRAM))
    except OSError as e:
        return False, "the kernel refuses cgroup_skb programs: %s" % e
    root = cgroup.v2_root()
    if root is None:
        return True, "no cgroup v2 mount: an activation mounts one at %s" % cgroup.OUR_MOUNT
    return True, "cgroup v2 root at %s: socket stages by cgroup_skb ingress where kprobes are not" % root


def check_tracefs():
    try:
        return True, "mounted at %s" % tracefs.ensure_mounted()
    except Exception as e:
        return False, "cannot mount tracefs: %s" % e


def check_kprobes():
    if tracefs.KernelHooks().kprobes_supported:
        return True, "supported"
    return False, "not supported by this kernel (CONFIG_KPROBES off): tracepoint fallbacks run"


def check_headers():
    try:
        description, _source = headers.header_tree()
    except headers.HeadersError as e:
        return False, str(e)
    return True, description


def check_bcc():
    try:
        import bcc  # noqa: F401  Debian's python3-bpfcc
    except ImportError as e:
        return False, "not importable (%s): run mount.sh" % e
    return True, "importable from %s" % os.path.dirname(bcc.__file__)


def check_fuse():
    if not os.path.exists("/dev/fuse"):
        return False, "/dev/fuse missing"
    try:
        from .. import fuse_binding
    except (ImportError, OSError, EnvironmentError) as e:
        return False, "no FUSE binding (%s): run mount.sh" % e
    tool = shutil.which("fusermount3") or shutil.which("fusermount") or "none (root unmounts with umount)"
    return True, "%s; /dev/fuse; fusermount: %s" % (fuse_binding.describe(), tool)


CHECKS = (("BPF", check_bpf), ("BTF", check_btf), ("tracefs", check_tracefs),
          ("kprobes", check_kprobes), ("cgroup", check_cgroup_skb), ("kfuncs", check_direct_read),
          ("headers", check_headers),
          ("BCC", check_bcc), ("FUSE", check_fuse))
# Their absence only selects fallbacks (tracepoints; no socket stages; bpf_probe_read_kernel).
OPTIONAL = ("kprobes", "cgroup", "kfuncs")
