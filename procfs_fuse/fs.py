"""fusepy Operations: routes paths to entries, keeps one snapshot per open.

Only routing and /proc semantics live here: st_size 0 with direct_io, one
render per open (like seq_file's single_open), reads served from that
snapshot by offset, one write() = one command batch, truncate a no-op.
"""
import errno
import itertools
import logging
import os
import stat
import threading
import time

from fuse import FUSE, FuseOSError, Operations, fuse_get_context

from .drop_packet.errors import ErrnoError

log = logging.getLogger(__name__)

ENTRY_PATH = "/mooc/net/drop-packet"


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


class ProcFS(Operations):
    def __init__(self, entries, file_mode=0o644):
        """entries: {path: object with render() -> bytes and command(bytes)}."""
        self._entries = entries
        self._file_mode = file_mode
        self._dirs = _directories(entries)
        self._snapshots = {}
        self._handles = itertools.count(1)
        self._snapshots_lock = threading.Lock()
        self._mounted_at = time.time()

    def __call__(self, op, *args):
        # A handler's error becomes an errno and one log line; the daemon keeps serving.
        try:
            return super().__call__(op, *args)
        except FuseOSError:
            raise
        except ErrnoError as e:
            raise FuseOSError(e.errno)
        except Exception:
            log.exception("FUSE %s failed", op)
            raise FuseOSError(errno.EIO)

    def _entry(self, path):
        try:
            return self._entries[path]
        except KeyError:
            raise FuseOSError(errno.ENOENT) from None

    def getattr(self, path, fh=None):
        times = dict(st_atime=self._mounted_at, st_mtime=self._mounted_at, st_ctime=self._mounted_at,
                     st_uid=0, st_gid=0)
        if path in self._dirs:
            return dict(times, st_mode=stat.S_IFDIR | 0o555, st_nlink=2)
        self._entry(path)
        return dict(times, st_mode=stat.S_IFREG | self._file_mode, st_nlink=1, st_size=0)

    def readdir(self, path, fh):
        if path not in self._dirs:
            raise FuseOSError(errno.ENOTDIR)
        return [".", ".."] + sorted(self._dirs[path])

    def open(self, path, fi):
        entry = self._entry(path)
        fi.direct_io = 1  # size 0 yet content: the kernel must not cache or trust st_size
        fi.fh = next(self._handles)
        if (fi.flags & os.O_ACCMODE) != os.O_WRONLY:
            snapshot = entry.render()
            with self._snapshots_lock:
                self._snapshots[fi.fh] = snapshot
        return 0

    def read(self, path, size, offset, fi):
        with self._snapshots_lock:
            snapshot = self._snapshots.get(fi.fh)
        if snapshot is None:
            raise FuseOSError(errno.EBADF)
        return snapshot[offset:offset + size]

    def write(self, path, data, offset, fi):
        # Any offset: a script may keep the file open and write batch after
        # batch. serve() sets max_write so that the kernel never splits an
        # acceptable batch into pieces.
        entry = self._entry(path)
        _require_root()
        entry.command(data)
        return len(data)

    def truncate(self, path, length, fh=None):
        self._entry(path)
        _require_root()
        return 0  # so `echo x > file` works, as on /proc

    def release(self, path, fi):
        with self._snapshots_lock:
            self._snapshots.pop(fi.fh, None)
        return 0


def serve(entries, mountpoint, fsname="drop-packet", allow_other=False, private=False):
    """Mount and serve in the foreground until unmounted or signalled.

    Only root may use the mount unless allow_other; then the kernel checks the
    file modes (default_permissions): others may read the report (not with
    private) and never write. max_write far above commands.MAX_WRITE: a batch
    always arrives in one write.
    """
    access = dict(allow_other=True, default_permissions=True) if allow_other else {}
    FUSE(ProcFS(entries, file_mode=0o600 if private else 0o644), mountpoint, foreground=True,
         raw_fi=True, big_writes=True, max_write=131072, fsname=fsname, subtype="drop-packet", **access)
