"""A kernel header tree for BCC's compiler.

BCC only needs headers to compile; struct layouts are taken from BTF, so the
distribution's generic headers are good enough when the running kernel's own
are missing. Order: the running kernel's build tree, /sys/kernel/kheaders.tar.xz
(BCC unpacks it itself), else the newest /usr/src/linux-headers-*-common merged
with its architecture part into one tree in a cache directory.
"""
import os
import re
from pathlib import Path

CACHE_DIR = Path("/var/cache/drop-packet")
KHEADERS = "/sys/kernel/kheaders.tar.xz"


class HeadersError(Exception):
    pass


def _version_key(name):
    return [int(n) for n in re.findall(r"\d+", name)]


def find_generic_pair(usr_src="/usr/src", arch="amd64"):
    """(common, arch) directories of the newest generic header package, or None."""
    pairs = []
    for common in Path(usr_src).glob("linux-headers-*-common"):
        arch_dir = Path(str(common)[: -len("common")] + arch)
        if arch_dir.is_dir():
            pairs.append((common, arch_dir))
    if not pairs:
        return None
    return max(pairs, key=lambda p: _version_key(p[0].name))


def merge_tree(common, arch_dir, cache_dir=CACHE_DIR):
    """A tree of symlinks: common's files, overlaid by the architecture's."""
    target = Path(cache_dir) / ("headers-" + Path(arch_dir).name[len("linux-headers-"):])
    done = target / ".complete"
    if done.exists():
        return target
    for source in (Path(common), Path(arch_dir)):
        for dirpath, dirnames, filenames in os.walk(source):
            rel = Path(dirpath).relative_to(source)
            (target / rel).mkdir(parents=True, exist_ok=True)
            for name in filenames:
                link = target / rel / name
                if link.is_symlink() or link.exists():
                    link.unlink()
                link.symlink_to(Path(dirpath) / name)
    done.touch()
    return target


def header_tree(release=None, usr_src="/usr/src", cache_dir=CACHE_DIR, kheaders=KHEADERS):
    """(description, BCC_KERNEL_SOURCE value or None when BCC finds it alone)."""
    release = release or os.uname().release
    build = Path("/lib/modules") / release / "build"
    if (build / "include").is_dir():
        return "running kernel's headers at %s" % build, None
    if os.path.exists(kheaders):
        return "in-kernel headers %s" % kheaders, None
    pair = find_generic_pair(usr_src)
    if pair is None:
        raise HeadersError("no kernel headers: install linux-headers-amd64 (mount.sh does)")
    tree = merge_tree(*pair, cache_dir=cache_dir)
    return "generic headers %s (layouts from BTF)" % tree, str(tree)


def point_bcc_at_headers():
    """Tells BCC's compiler (BCC_KERNEL_SOURCE) where the tree is, when it cannot find it
    alone; returns the tree's description."""
    description, source = header_tree()
    if source:
        os.environ["BCC_KERNEL_SOURCE"] = source
    return description
