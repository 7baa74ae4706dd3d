"""What BCC cannot emit, patched into the bytecode it compiled before the
functions are loaded:

- A kfunc call (a call that names a kernel function by its BTF type id;
  libbpf resolves these from `extern ... __ksym`): the C calls the helper
  number KFUNC_PLACEHOLDER, which becomes a kfunc call.
- A map value's address (what libbpf makes of a global variable): the C
  loads bpf_pseudo_fd(BPF_PSEUDO_MAP_VALUE, MAP_VALUE_PLACEHOLDER), which
  gets the map's fd. The program then holds the address as a constant: no
  lookup and no NULL test. The kernel allows it on an array of one entry.

The one kfunc used is bpf_rdonly_cast(p, 0): it turns a kernel address into a
pointer the program may load from directly, which needs a kernel that accepts
the cast to void (rdonly_cast_id() tries it).
"""
import ctypes
import errno
import os
import struct

from .bpfsys import load_program

KFUNC_PLACEHOLDER = 0x7FF1  # helper number in the compiled call; no kernel has this helper
MAP_VALUE_PLACEHOLDER = 0x7FF2  # fd in the compiled map value load
_INSN = struct.Struct("<BBhi")  # code, dst_reg | src_reg << 4, off, imm
_CALL = 0x85                    # BPF_JMP | BPF_CALL
_LD_IMM64 = 0x18                # BPF_LD | BPF_IMM | BPF_DW: two instruction slots
_MOV_IMM = 0xB7                 # BPF_ALU64 | BPF_MOV | BPF_K
_EXIT = 0x95
_PSEUDO_KFUNC_CALL = 2          # src_reg of a call whose imm is a BTF id
_PSEUDO_MAP_VALUE = 2           # src_reg of an ld_imm64 whose imm is a map fd, the next imm an offset
_PROG_TYPE_RAW_TRACEPOINT = 17


def patch(code, kfunc_btf_id=None, map_fd=None):
    """(code with every placeholder kfunc call made a call to kfunc_btf_id and
    every placeholder map value load given map_fd, how many of each).
    A placeholder left unpatched (None) stays: the kernel refuses it."""
    out = bytearray(code)
    calls = values = 0
    pos, end = 0, len(out) - len(out) % 8
    while pos < end:
        op, regs, _off, imm = _INSN.unpack_from(out, pos)
        if op == _CALL and regs >> 4 == 0 and imm == KFUNC_PLACEHOLDER and kfunc_btf_id is not None:
            _INSN.pack_into(out, pos, op, (regs & 0x0F) | _PSEUDO_KFUNC_CALL << 4, 0, kfunc_btf_id)
            calls += 1
        elif op == _LD_IMM64 and regs >> 4 == _PSEUDO_MAP_VALUE and imm == MAP_VALUE_PLACEHOLDER \
                and map_fd is not None:
            _INSN.pack_into(out, pos, op, regs, 0, map_fd)
            values += 1
        pos += 16 if op == _LD_IMM64 else 8  # its second slot is no instruction
    return bytes(out), calls, values


def patch_module(bpf_module, kfunc_btf_id, map_fd):
    """Patches, in place, every function of a compiled BCC module before it is loaded."""
    from bcc import lib  # Debian's python3-bpfcc
    for i in range(lib.bpf_num_functions(bpf_module.module)):
        name = lib.bpf_function_name(bpf_module.module, i)
        start = lib.bpf_function_start(bpf_module.module, name)
        size = lib.bpf_function_size(bpf_module.module, name)
        code, calls, values = patch(ctypes.string_at(start, size), kfunc_btf_id, map_fd)
        if calls or values:
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
