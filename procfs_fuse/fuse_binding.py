"""The one place that picks the FUSE binding: mfusepy on libfuse3 where
set-up installed it (a host whose FUSE is fuse3: Debian 12+ and Ubuntu
22.04+ Break fuse 2 with it), else fusepy on libfuse2. Both have fusepy's API."""
import ctypes.util
import importlib.util
import os

if importlib.util.find_spec("mfusepy"):
    # mfusepy takes libfuse 2 first where both libraries are there
    os.environ.setdefault("FUSE_LIBRARY_PATH", ctypes.util.find_library("fuse3") or "")
    import mfusepy as fuse
    BINDING, LIBFUSE_MAJOR = "mfusepy", fuse.fuse_version_major
else:
    import fuse
    BINDING, LIBFUSE_MAJOR = "fusepy", 2

FUSE, FuseOSError, Operations, fuse_get_context = fuse.FUSE, fuse.FuseOSError, fuse.Operations, fuse.fuse_get_context


def describe():
    """For doctor: which binding, on which library."""
    return "%s on %s (libfuse %d)" % (BINDING, os.path.basename(fuse._libfuse_path), LIBFUSE_MAJOR)
