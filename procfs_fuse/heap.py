"""The daemon's C heap (glibc malloc), where BCC's compiler (LLVM) works: some
100 MB at its peak on every activation. Each FUSE worker thread that ran an
activation would keep an arena of its own at that peak; one arena is reused
by every activation instead, and what a compile freed goes back to the
system, so the daemon's memory stays where it was between activations."""
import ctypes
import ctypes.util

M_ARENA_MAX = -8  # glibc's malloc.h
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def one_arena():
    """Every thread allocates from one arena: before any thread starts."""
    _libc.mallopt(M_ARENA_MAX, 1)


def give_back():
    """Returns the heap's free pages to the system (after a compile, after a
    program's close)."""
    _libc.malloc_trim(0)
