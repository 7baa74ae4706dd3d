"""The bpf() system call, for the few things BCC does not do for us."""
import ctypes
import os
import struct

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_LINK_CREATE = 0, 5, 28
ATTR_SIZE = 128  # bytes of union bpf_attr passed; the kernel wants the rest zero


def bpf(command, attr):
    """bpf(command, attr) -> the file descriptor it returns; OSError on refusal.
    attr: a ctypes buffer of ATTR_SIZE bytes."""
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise OSError("unknown bpf syscall number on %s" % os.uname().machine)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(number, command, attr, ATTR_SIZE)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def load_program(program_type, code):
    """BPF_PROG_LOAD of code (instructions as bytes, GPL) -> its fd; OSError on refusal."""
    instructions = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(ATTR_SIZE)
    struct.pack_into("<IIQQ", attr, 0, program_type, len(code) // 8, ctypes.addressof(instructions),
                     ctypes.addressof(license_))
    return bpf(BPF_PROG_LOAD, attr)
