"""The BTF reader on a blob built here, shaped like the kernel's sk_buff:
members inside anonymous unions and structs, a bitfield, typedefs, an enum,
a kernel function."""
import struct

import pytest

from procfs_fuse.kernel.btf import BTF, BTFError, Member


class BlobBuilder:
    def __init__(self):
        self.strings = b"\0"
        self.types = b""

    def name(self, text):
        if not text:
            return 0
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(self, kind, name, size_or_type, vlen=0, kind_flag=0, trailer=b""):
        info = (kind_flag << 31) | (kind << 24) | vlen
        self.types += struct.pack("<III", self.name(name), info, size_or_type) + trailer

    def members(self, *items):
        return b"".join(struct.pack("<III", self.name(n), t, off) for n, t, off in items)

    def blob(self, magic=0xEB9F):
        header = struct.pack("<HBBIIIII", magic, 1, 0, 24, 0, len(self.types), len(self.types),
                             len(self.strings))
        return header + self.types + self.strings


def sk_buff_blob(magic=0xEB9F):
    b = BlobBuilder()
    b.add(1, "unsigned int", 4, trailer=struct.pack("<I", 32))                  # 1
    b.add(1, "unsigned short", 2, trailer=struct.pack("<I", 16))                # 2
    b.add(2, "", 0)                                                             # 3: void *
    b.add(8, "__u16", 2)                                                        # 4: typedef
    b.add(4, "", 4, vlen=2, trailer=b.members(("network_header", 4, 0),
                                              ("transport_header", 4, 16)))     # 5: anon struct
    b.add(5, "", 4, vlen=2, trailer=b.members(("", 5, 0), ("headers", 5, 0)))   # 6: anon union
    b.add(13, "", 1, vlen=2, trailer=struct.pack("<IIII", 0, 1, 0, 3))          # 7: func proto
    b.add(3, "", 0, trailer=struct.pack("<III", 1, 1, 4))                       # 8: unsigned int[4]
    b.add(10, "", 4)                                                            # 9: const __u16
    b.add(4, "sk_buff", 48, vlen=6, kind_flag=1, trailer=b.members(
        ("len", 1, 0), ("head", 3, 64), ("", 6, 128),
        ("cloned", 1, (1 << 24) | 160), ("arr", 8, 192), ("protocol", 9, 320)))  # 10
    b.add(6, "skb_drop_reason", 4, vlen=2, trailer=struct.pack("<IiIi", b.name("SKB_DROP_REASON_NO_SOCKET"), 3,
                                                               b.name("SKB_DROP_REASON_TCP_CSUM"), 7))  # 11
    b.add(12, "bpf_rdonly_cast", 7, vlen=1)                                     # 12: global function
    return b.blob(magic)


def test_members_at_top_level_and_inside_anonymous_union_and_struct():
    btf = BTF(sk_buff_blob())
    assert btf.struct_member("sk_buff", "len") == Member(0, 4)
    assert btf.struct_member("sk_buff", "head") == Member(8, 8)
    assert btf.struct_member("sk_buff", "network_header") == Member(16, 2)
    assert btf.struct_member("sk_buff", "transport_header") == Member(18, 2)
    assert btf.struct_member("sk_buff", "headers") == Member(16, 4)
    assert btf.struct_member("sk_buff", "arr") == Member(24, 16)
    assert btf.struct_member("sk_buff", "protocol") == Member(40, 2)  # through const and typedef


def test_enum_values():
    assert BTF(sk_buff_blob()).enum("skb_drop_reason") == {
        "SKB_DROP_REASON_NO_SOCKET": 3, "SKB_DROP_REASON_TCP_CSUM": 7}


def test_function_ids():
    btf = BTF(sk_buff_blob())
    assert btf.func_id("bpf_rdonly_cast") == 12
    assert btf.func_id("sk_buff") is None  # a struct, not a function
    assert btf.func_id("nope") is None


def test_errors_name_what_is_missing():
    btf = BTF(sk_buff_blob())
    with pytest.raises(BTFError, match="no member nope"):
        btf.struct_member("sk_buff", "nope")
    with pytest.raises(BTFError, match="struct sock not in BTF"):
        btf.struct_member("sock", "len")
    with pytest.raises(BTFError, match="bitfield"):
        btf.struct_member("sk_buff", "cloned")
    with pytest.raises(BTFError, match="enum nope"):
        btf.enum("nope")
    with pytest.raises(BTFError, match="bad magic"):
        BTF(sk_buff_blob(magic=0x1234))
    with pytest.raises(BTFError, match="too short"):
        BTF(b"\x9f\xeb")


def test_a_dotted_path_goes_through_named_members():
    btf = BTF(sk_buff_blob())
    assert btf.struct_member("sk_buff", "headers.transport_header") == Member(18, 2)
    assert btf.struct_size("sk_buff") == 48 and btf.has_struct("sk_buff") and not btf.has_struct("nf_conn")
    with pytest.raises(BTFError):
        btf.struct_member("sk_buff", "len.nothing")  # len is no struct


def test_a_modules_split_btf_continues_vmlinuxs_types_and_strings():
    # as /sys/kernel/btf/nf_conntrack sits on vmlinux: its type ids start after
    # vmlinux's last (12), its string offsets after vmlinux's strings, and it refers to both
    base = BTF(sk_buff_blob())
    module = BlobBuilder()
    module.strings = b""  # a split BTF's strings go on from the base's
    own = lambda text: len(base._strings) + module.name(text)
    module.types = struct.pack("<III", own("nf_conn"), (4 << 24) | 2, 72) + struct.pack(
        "<IIIIII", own("status"), 1, 0, own("skb"), 10, 64)  # 13: unsigned int, then vmlinux's sk_buff
    split = BTF(module.blob(), base)
    assert split.struct_member("nf_conn", "status") == Member(0, 4)
    assert split.struct_member("nf_conn", "skb.head") == Member(16, 8)  # a member of vmlinux's type
    assert split.struct_member("sk_buff", "len") == Member(0, 4)  # vmlinux's own types stay
