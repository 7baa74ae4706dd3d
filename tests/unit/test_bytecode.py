"""Patching what BCC cannot emit into compiled bytecode, on hand-made bytecode."""
import struct

from procfs_fuse.kernel.bytecode import KFUNC_PLACEHOLDER, MAP_VALUE_PLACEHOLDER, patch

INSN = struct.Struct("<BBhi")


def insn(code, dst=0, src=0, off=0, imm=0):
    return INSN.pack(code, dst | src << 4, off, imm)


def changed_slots(code, patched):
    assert len(patched) == len(code)
    return [i // 8 for i in range(0, len(code), 8) if patched[i:i + 8] != code[i:i + 8]]


def test_only_placeholder_helper_calls_become_kfunc_calls():
    code = b"".join((
        insn(0xB7, dst=2, imm=0),                      # r2 = 0
        insn(0x85, imm=KFUNC_PLACEHOLDER),             # call placeholder: patched
        insn(0x18, dst=1, src=1, imm=5),               # ld_imm64 map fd ...
        insn(0x85, imm=KFUNC_PLACEHOLDER),             # ... its second half: not an instruction
        insn(0x85, imm=1),                             # call bpf_map_lookup_elem: kept
        insn(0x85, src=1, imm=KFUNC_PLACEHOLDER),      # call to a subprogram (src 1): kept
        insn(0xB7, dst=0, imm=KFUNC_PLACEHOLDER),      # r0 = KFUNC_PLACEHOLDER: kept
        insn(0x85, imm=KFUNC_PLACEHOLDER),             # patched
        insn(0x95),
    ))
    patched, calls, values = patch(code, kfunc_btf_id=65486)
    assert (calls, values) == (2, 0)
    assert changed_slots(code, patched) == [1, 7]
    for slot in (1, 7):
        assert INSN.unpack_from(patched, 8 * slot) == (0x85, 2 << 4, 0, 65486)


def test_placeholder_map_value_loads_get_the_maps_fd():
    code = b"".join((
        insn(0x18, dst=3, src=2, imm=MAP_VALUE_PLACEHOLDER),  # ld_imm64 map value: patched ...
        insn(0x00, imm=0),                                    # ... offset 0 in the value: kept
        insn(0x18, dst=1, src=1, imm=MAP_VALUE_PLACEHOLDER),  # ld_imm64 map fd (src 1): kept
        insn(0x00),
        insn(0x18, dst=4, src=0, imm=MAP_VALUE_PLACEHOLDER),  # a plain 64-bit constant: kept
        insn(0x00),
        insn(0x95),
    ))
    patched, calls, values = patch(code, map_fd=9)
    assert (calls, values) == (0, 1)
    assert changed_slots(code, patched) == [0]
    assert INSN.unpack_from(patched, 0) == (0x18, 3 | 2 << 4, 0, 9)


def test_without_what_to_put_in_placeholders_stay():
    code = insn(0x85, imm=KFUNC_PLACEHOLDER) + insn(0x18, src=2, imm=MAP_VALUE_PLACEHOLDER) + insn(0x00) + insn(0x95)
    assert patch(code) == (code, 0, 0)


def test_no_placeholder_leaves_the_code_alone():
    code = insn(0x85, imm=1) + insn(0x95)
    assert patch(code, 7, 9) == (code, 0, 0)
