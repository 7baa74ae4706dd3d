"""FUSE Operations: routes paths to an entry's views, keeps one snapshot per open.

Only routing and /proc semantics live here: st_size 0 with direct_io, one
render per open (like seq_file's single_open), reads served from that
snapshot by offset, one write() = one command batch, truncate a no-op. The
text file takes commands; its .json and .prom siblings are read-only views
of the same entry.
"""
import errno
import functools
import itertools
import logging
import os
import stat
import threading
import time

from . import heap
from .drop_packet.errors import ErrnoError
from .drop_packet.views import VIEWS
from .fuse_binding import FUSE, LIBFUSE_MAJOR, FuseOSError, Operations, fuse_get_context

log = logging.getLogger(__name__)

ENTRY_PATH = "/mooc/net/drop-packet"
LIBFUSE3_LOOP_ENDED = 8  # fuse_main's code when its event loop returned nonzero


def views(path, entry):
    """{path: (entry, suffix)} of an entry served at path and its siblings (views.VIEWS)."""
    return {path + suffix: (entry, suffix) for suffix in VIEWS}


def _directories(file_paths):
    """Every directory above the files, with its children."""
    tree = {"/": set()}
    for path in file_paths:
        parts = path.strip("/").split("/")
        for depth in range(len(parts)):
            parent = "/" + "/".join(parts[:depth])
            tree.setdefault(parent, set()).add(parts[depth])
    return tree


def _require_root():
    """Writes load BPF programs: root only, even where the mount lets others in."""
    uid, _gid, _pid = fuse_get_context()
    if uid != 0:
        raise FuseOSError(errno.EACCES)


def _errno_of_failures(operation):
    """A handler's error becomes an errno and one log line; the daemon keeps
    serving. A decorator, not Operations.__call__: mfusepy calls the
    methods directly."""
    @functools.wraps(operation)
    def guarded(self, *args):
        try:
            return operation(self, *args)
        except FuseOSError:
            raise
        except ErrnoError as e:
            raise FuseOSError(e.errno)
        except Exception:
            log.exception("FUSE %s failed", operation.__name__)
            raise FuseOSError(errno.EIO)
    return guarded


class ProcFS(Operations):
    use_ns = True  # times in ns, as both bindings take them without a warning

    def __init__(self, entries, file_mode=0o644):
        """entries: {path: (entry, suffix)}: an object with view(suffix) -> bytes
        and command(bytes), and the suffix of the view at that path (views.VIEWS)."""
        self._entries = entries
        self._file_mode = file_mode
        self._dirs = _directories(entries)
        self._snapshots = {}
        self._handles = itertools.count(1)
        self._snapshots_lock = threading.Lock()
        self._mounted_at = time.time_ns()

    def _entry(self, path):
        try:
            return self._entries[path]
        except KeyError:
            raise FuseOSError(errno.ENOENT) from None

    def _writable(self, path):
        entry, suffix = self._entry(path)
        if not VIEWS[suffix].writable:
            raise FuseOSError(errno.EACCES)
        _require_root()
        return entry

    @_errno_of_failures
    def getattr(self, path, fh=None):
        if path in self._dirs:
            return dict(st_atime=self._mounted_at, st_mtime=self._mounted_at, st_ctime=self._mounted_at,
                        st_uid=0, st_gid=0, st_mode=stat.S_IFDIR | 0o555, st_nlink=2)
        _entry, suffix = self._entry(path)
        mode = self._file_mode if VIEWS[suffix].writable else self._file_mode & 0o444
        now = time.time_ns()  # each open renders anew: the content is as new as the moment of asking
        return dict(st_atime=now, st_mtime=now, st_ctime=now, st_uid=0, st_gid=0,
                    st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=0)

    @_errno_of_failures
    def readdir(self, path, fh):
        if path not in self._dirs:
            raise FuseOSError(errno.ENOTDIR)
        return [".", ".."] + sorted(self._dirs[path])

    @_errno_of_failures
    def open(self, path, fi):
        entry, suffix = self._entry(path)
        if (fi.flags & os.O_ACCMODE) != os.O_RDONLY:
            self._writable(path)
        fi.direct_io = 1  # size 0 yet content: the kernel must not cache or trust st_size
        fi.fh = next(self._handles)
        if (fi.flags & os.O_ACCMODE) != os.O_WRONLY:
            snapshot = entry.view(suffix)
            with self._snapshots_lock:
                self._snapshots[fi.fh] = snapshot
        return 0

    @_errno_of_failures
    def read(self, path, size, offset, fi):
        with self._snapshots_lock:
            snapshot = self._snapshots.get(fi.fh)
        if snapshot is None:
            raise FuseOSError(errno.EBADF)
        return snapshot[offset:offset + size]

    @_errno_of_failures
    def write(self, path, data, offset, fi):
        # Any offset: a script may keep the file open and write batch after
        # batch. serve() sets max_write so that the kernel never splits an
        # acceptable batch into pieces.
        self._writable(path).command(data)
        return len(data)

    @_errno_of_failures
    def truncate(self, path, length, fh=None):
        self._writable(path)
        return 0  # so `echo x > file` works, as on /proc

    @_errno_of_failures
    def release(self, path, fi):
        with self._snapshots_lock:
            self._snapshots.pop(fi.fh, None)
        return 0


def serve(entries, mountpoint, fsname="drop-packet", allow_other=False, private=False):
    """Mount and serve in the foreground until unmounted or signalled.
    entries: {path: (entry, suffix)}, as views() makes them.

    Only root may use the mount unless allow_other; then the kernel checks the
    file modes (default_permissions): others may read the report (not with
    private) and never write. max_write far above commands.MAX_WRITE: a batch
    always arrives in one write.
    """
    access = dict(allow_other=True, default_permissions=True) if allow_other else {}
    if LIBFUSE_MAJOR == 2:  # libfuse 3 has big writes always on (up to 128 KiB), and neither option
        access.update(big_writes=True, max_write=131072)
    heap.one_arena()
    try:
        FUSE(ProcFS(entries, file_mode=0o600 if private else 0o644), mountpoint, foreground=True,
             raw_fi=True, fsname=fsname, subtype="drop-packet", **access)
    except RuntimeError as e:
        # libfuse 3's fuse_main ends with 8 when its loop ended on a signal
        # (SIGTERM, SIGINT): a normal end here; any other code is a failure
        if not (LIBFUSE_MAJOR == 3 and str(e) == str(LIBFUSE3_LOOP_ENDED)):
            raise
        log.info("libfuse 3's loop ended (a signal): unmounted")
