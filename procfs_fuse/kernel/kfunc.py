"""Kernel functions (kfuncs) called from programs that BCC compiles.

BCC cannot emit a kfunc call (a call that names a kernel function by its BTF
type id; libbpf resolves these from `extern ... __ksym`). So the C calls a
placeholder helper number instead, and patch_module() rewrites those calls
into kfunc calls before BCC loads the functions.

The one kfunc used is bpf_rdonly_cast(p, 0): it turns a kernel address into a
pointer the program may load from directly, which needs a kernel that accepts
the cast to void (rdonly_cast_id() tries it).
"""
import ctypes
import errno
import os
import struct

from .bpfsys import load_program

PLACEHOLDER = 0x7FF1  # helper number in the compiled call; no kernel has this helper
_INSN = struct.Struct("<BBhi")  # code, dst_reg | src_reg << 4, off, imm
_CALL = 0x85                    # BPF_JMP | BPF_CALL
_MOV_IMM = 0xB7                 # BPF_ALU64 | BPF_MOV | BPF_K
_EXIT = 0x95
_PSEUDO_KFUNC_CALL = 2          # src_reg of a call whose imm is a BTF id
_PROG_TYPE_RAW_TRACEPOINT = 17


def patch(code, btf_id):
    """(code with every placeholder call made a kfunc call to btf_id, how many)."""
    out = bytearray(code)
    patched = 0
    for pos in range(0, len(out) - len(out) % 8, 8):
        op, regs, _off, imm = _INSN.unpack_from(out, pos)
        if op == _CALL and regs >> 4 == 0 and imm == PLACEHOLDER:
            _INSN.pack_into(out, pos, op, (regs & 0x0F) | _PSEUDO_KFUNC_CALL << 4, 0, btf_id)
            patched += 1
    return bytes(out), patched


def patch_module(bpf_module, btf_id):
    """Patches, in place, every function of a compiled BCC module before it is loaded."""
    from bcc import lib  # Debian's python3-bpfcc
    for i in range(lib.bpf_num_functions(bpf_module.module)):
        name = lib.bpf_function_name(bpf_module.module, i)
        start = lib.bpf_function_start(bpf_module.module, name)
        size = lib.bpf_function_size(bpf_module.module, name)
        code, patched = patch(ctypes.string_at(start, size), btf_id)
        if patched:
            ctypes.memmove(start, code, size)


def rdonly_cast_id(btf):
    """(BTF id of bpf_rdonly_cast, None) if this kernel loads a program that
    casts to void with it, else (None, why not)."""
    btf_id = btf.func_id("bpf_rdonly_cast")
    if btf_id is None:
        return None, "no bpf_rdonly_cast in this kernel (6.2+)"
    program = b"".join((
        _INSN.pack(_MOV_IMM, 1, 0, 0),                          # r1 = 0
        _INSN.pack(_MOV_IMM, 2, 0, 0),                          # r2 = 0: cast to void
        _INSN.pack(_CALL, _PSEUDO_KFUNC_CALL << 4, 0, btf_id),  # bpf_rdonly_cast(r1, r2)
        _INSN.pack(_MOV_IMM, 0, 0, 0),
        _INSN.pack(_EXIT, 0, 0, 0)))
    try:
        fd = load_program(_PROG_TYPE_RAW_TRACEPOINT, program)
    except OSError as e:
        reason = "the kernel refuses bpf_rdonly_cast(p, 0) (6.17+)"
        return None, reason if e.errno in (errno.EINVAL, errno.EACCES) else "%s: %s" % (reason, e)
    os.close(fd)
    return btf_id, None
