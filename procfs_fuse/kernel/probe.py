"""What this machine offers, for `procfs_fuse doctor`. Each check returns (ok, text)."""
import ctypes
import os
import shutil
import struct

from . import headers, tracefs
from .btf import VMLINUX_BTF, BTF, BTFError

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_MAP_CREATE, _BPF_MAP_TYPE_ARRAY = 0, 2


def check_bpf():
    nr = _SYS_BPF.get(os.uname().machine)
    if nr is None:
        return False, "unknown bpf syscall number on %s" % os.uname().machine
    attr = ctypes.create_string_buffer(struct.pack("<IIII", _BPF_MAP_TYPE_ARRAY, 4, 4, 1), 128)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(nr, _BPF_MAP_CREATE, attr, 128)
    if fd < 0:
        return False, "bpf() refused: %s" % os.strerror(ctypes.get_errno())
    os.close(fd)
    return True, "bpf() creates maps"


def check_btf():
    try:
        member = BTF.from_file().struct_member("sk_buff", "len")
    except (OSError, BTFError) as e:
        return False, "%s: %s" % (VMLINUX_BTF, e)
    return True, "%s (sk_buff.len at offset %d)" % (VMLINUX_BTF, member.offset)


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
    if not shutil.which("fusermount"):
        return False, "fusermount missing (apt-get install fuse)"
    return True, "/dev/fuse and fusermount present"


CHECKS = (("BPF", check_bpf), ("BTF", check_btf), ("tracefs", check_tracefs),
          ("kprobes", check_kprobes), ("headers", check_headers), ("BCC", check_bcc),
          ("FUSE", check_fuse))
