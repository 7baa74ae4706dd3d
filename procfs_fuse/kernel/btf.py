"""A small reader of the kernel's BTF (/sys/kernel/btf/vmlinux, and a module's
/sys/kernel/btf/MODULE: split BTF, whose types and strings continue
vmlinux's).

Only what the tool needs: struct member offsets (descending into anonymous
structs and unions, and along a dotted path of members), struct sizes, enum
values and the type ids of kernel functions. Header files in the BCC tree are from
another kernel; these offsets are the running kernel's truth.
"""
import struct
from array import array
from dataclasses import dataclass

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
MODULE_BTF = "/sys/kernel/btf/%s"
BTF_MAGIC = 0xEB9F

KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 1, 2, 3, 4, 5, 6
KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC = 8, 9, 10, 11, 12
KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = 13, 14, 15, 17, 18, 19

# Bytes that follow the 12-byte common header, per kind: fixed part, per-vlen part.
_TRAILER = {
    KIND_INT: (4, 0), KIND_ARRAY: (12, 0), KIND_STRUCT: (0, 12), KIND_UNION: (0, 12),
    KIND_ENUM: (0, 8), KIND_FUNC_PROTO: (0, 8), KIND_VAR: (4, 0), KIND_DATASEC: (0, 12),
    KIND_DECL_TAG: (4, 0), KIND_ENUM64: (0, 12),
}
_MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)


class BTFError(Exception):
    pass


@dataclass(frozen=True)
class Member:
    offset: int  # bytes from the start of the outer struct
    size: int    # bytes


@dataclass
class _Type:
    kind: int
    size_or_type: int
    vlen: int
    kind_flag: bool
    body: int  # offset of the trailer in its BTF's type section
    btf: "BTF"  # the BTF it is in (a module's types sit on vmlinux's)


class BTF:
    def __init__(self, blob: bytes, base=None):
        """base: the BTF a module's split BTF continues (vmlinux's)."""
        if len(blob) < 24:
            raise BTFError("BTF blob too short")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
        if magic != BTF_MAGIC:
            raise BTFError("not BTF (bad magic %#x)" % magic)
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        self._types_blob = blob[hdr_len + type_off: hdr_len + type_off + type_len]
        self._strings = blob[hdr_len + str_off: hdr_len + str_off + str_len]
        self._base = base
        self._first_id = base._first_id + len(base._positions) if base else 1  # type id 0 is void
        self._positions = array("I")  # of this BTF's types in its type section: a type is read when asked for
        self._by_name = dict(base._by_name) if base else {}
        self._index()

    @classmethod
    def from_file(cls, path=VMLINUX_BTF, base=None):
        with open(path, "rb") as f:
            return cls(f.read(), base)

    def _string(self, off):
        if self._base:
            if off < len(self._base._strings):
                return self._base._string(off)
            off -= len(self._base._strings)
        end = self._strings.index(b"\0", off)
        return self._strings[off:end].decode()

    def _index(self):
        """Where each type starts, and the ids of the named ones asked for by
        name (some 125,000 types on 6.18: objects for them all took 0.23 s
        and 44 MB an activation)."""
        blob, pos, end, positions = self._types_blob, 0, len(self._types_blob), self._positions
        while pos < end:
            name_off, info = struct.unpack_from("<II", blob, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind in (KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FUNC) and name_off:
                self._by_name.setdefault((kind, self._string(name_off)), self._first_id + len(positions))
            positions.append(pos)
            fixed, per = _TRAILER.get(kind, (0, 0))
            pos += 12 + fixed + per * vlen

    def _type(self, type_id):
        """The type of that id (None: void), from the BTF that holds it."""
        if type_id < self._first_id:
            return self._base._type(type_id) if self._base else None
        pos = self._positions[type_id - self._first_id]
        _name_off, info, size_or_type = struct.unpack_from("<III", self._types_blob, pos)
        return _Type((info >> 24) & 0x1F, size_or_type, info & 0xFFFF, bool(info >> 31), pos + 12, self)

    def _resolve(self, type_id):
        """Skip typedefs and qualifiers."""
        t = self._type(type_id)
        while t is not None and t.kind in _MODIFIERS:
            type_id = t.size_or_type
            t = self._type(type_id)
        return t

    def _size(self, type_id):
        t = self._resolve(type_id)
        if t is None:
            return 0
        if t.kind == KIND_PTR:
            return 8
        if t.kind == KIND_ARRAY:
            elem, _index, nelems = struct.unpack_from("<III", t.btf._types_blob, t.body)
            return self._size(elem) * nelems
        return t.size_or_type

    def _members(self, t):
        for i in range(t.vlen):
            name_off, type_id, offset = struct.unpack_from("<III", t.btf._types_blob, t.body + 12 * i)
            bitfield_bits = 0
            if t.kind_flag:
                bitfield_bits, offset = offset >> 24, offset & 0xFFFFFF
            yield (t.btf._string(name_off) if name_off else ""), type_id, offset, bitfield_bits

    def _find_member(self, t, name, base_bits):
        for member_name, type_id, bit_offset, bitfield_bits in self._members(t):
            if member_name == name:
                return base_bits + bit_offset, type_id, bitfield_bits
            if not member_name:  # anonymous struct/union: descend
                inner = self._resolve(type_id)
                if inner is not None and inner.kind in (KIND_STRUCT, KIND_UNION):
                    found = self._find_member(inner, name, base_bits + bit_offset)
                    if found:
                        return found
        return None

    def _struct(self, struct_name):
        type_id = self._by_name.get((KIND_STRUCT, struct_name))
        if type_id is None:
            raise BTFError("struct %s not in BTF" % struct_name)
        return self._type(type_id)

    def has_struct(self, struct_name):
        return (KIND_STRUCT, struct_name) in self._by_name

    def struct_size(self, struct_name):
        return self._struct(struct_name).size_or_type

    def struct_member(self, struct_name, member) -> Member:
        """member: a name, or a dotted path through members ("dst.u3")."""
        t, bits, member_type = self._struct(struct_name), 0, None
        for name in member.split("."):
            found = t and t.kind in (KIND_STRUCT, KIND_UNION) and self._find_member(t, name, bits)
            if not found:
                raise BTFError("struct %s has no member %s" % (struct_name, member))
            bits, member_type, bitfield_bits = found
            if bits % 8 or bitfield_bits:
                raise BTFError("%s.%s is a bitfield" % (struct_name, member))
            t = self._resolve(member_type)
        return Member(bits // 8, self._size(member_type))

    def func_id(self, name):
        """The BTF type id of a kernel function (what a kfunc call names), or None."""
        return self._by_name.get((KIND_FUNC, name))

    def enum(self, enum_name) -> dict:
        """Enumerator name -> value."""
        for kind, per in ((KIND_ENUM, 8), (KIND_ENUM64, 12)):
            type_id = self._by_name.get((kind, enum_name))
            if type_id is None:
                continue
            t, values = self._type(type_id), {}
            for i in range(t.vlen):
                name_off, lo = struct.unpack_from("<II", t.btf._types_blob, t.body + per * i)
                hi = struct.unpack_from("<I", t.btf._types_blob, t.body + per * i + 8)[0] if per == 12 else 0
                values[t.btf._string(name_off)] = (hi << 32) | lo
            return values
        raise BTFError("enum %s not in BTF" % enum_name)
