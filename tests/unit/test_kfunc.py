"""Turning placeholder helper calls into kfunc calls, on hand-made bytecode."""
import struct

from procfs_fuse.kernel.kfunc import PLACEHOLDER, patch

INSN = struct.Struct("<BBhi")


def insn(code, dst=0, src=0, off=0, imm=0):
    return INSN.pack(code, dst | src << 4, off, imm)


def test_only_placeholder_helper_calls_become_kfunc_calls():
    code = b"".join((
        insn(0xB7, dst=2, imm=0),                 # r2 = 0
        insn(0x85, imm=PLACEHOLDER),              # call placeholder: patched
        insn(0x18, dst=1, src=1, imm=5),          # ld_imm64 map fd ...
        insn(0x00, imm=PLACEHOLDER),              # ... its second half: not an instruction
        insn(0x85, imm=1),                        # call bpf_map_lookup_elem: kept
        insn(0x85, src=1, imm=PLACEHOLDER),       # call to a subprogram (src 1): kept
        insn(0xB7, dst=0, imm=PLACEHOLDER),       # r0 = PLACEHOLDER: kept
        insn(0x85, imm=PLACEHOLDER),              # patched
        insn(0x95),
    ))
    patched, count = patch(code, 65486)
    assert count == 2
    assert len(patched) == len(code)
    changed = [i for i in range(0, len(code), 8) if patched[i:i + 8] != code[i:i + 8]]
    assert changed == [8, 56]
    for at in changed:
        assert INSN.unpack_from(patched, at) == (0x85, 2 << 4, 0, 65486)


def test_no_placeholder_leaves_the_code_alone():
    code = insn(0x85, imm=1) + insn(0x95)
    assert patch(code, 7) == (code, 0)
