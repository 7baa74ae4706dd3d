"""tracefs, kallsyms and header-tree logic on canned files."""
from pathlib import Path

import pytest

from procfs_fuse.drop_packet.capture.stages import BY_NAME
from procfs_fuse.kernel import headers
from procfs_fuse.kernel.ksyms import KernelSymbols, Symbolizer, text_symbols
from procfs_fuse.kernel.tracefs import KernelHooks

KALLSYMS = """\
ffffffff81000000 T _stext
ffffffff81a2b3c0 T eth_type_trans
ffffffff81a2b400 t __netif_receive_skb_core
ffffffff82000000 D tcp_v4_rcv_data
ffffffffc0000000 t veth_xmit\t[veth]
"""


def test_text_symbols_only():
    assert {name for _, name in text_symbols(KALLSYMS)} == {
        "_stext", "eth_type_trans", "__netif_receive_skb_core", "veth_xmit"}


def test_symbolize_as_function_plus_offset():
    symbolizer = Symbolizer(KALLSYMS)
    assert symbolizer.symbolize(0xffffffff81a2b3c0) == "eth_type_trans+0x0"
    assert symbolizer.symbolize(0xffffffff81a2b4c4) == "__netif_receive_skb_core+0xc4"
    assert symbolizer.symbolize(0xffffffffc0000010) == "veth_xmit+0x10"
    assert symbolizer.symbolize(0x1000) == "0x1000"


def test_hidden_addresses_symbolize_as_numbers():
    hidden = "0000000000000000 T eth_type_trans\n"
    assert Symbolizer(hidden).symbolize(0xffffffff81a2b3c4) == "0xffffffff81a2b3c4"


def _fake_kernel(tmp_path, tracepoints, kprobes):
    tracefs = tmp_path / "tracing"
    tracefs.mkdir()
    for tp in tracepoints:
        (tracefs / "events" / tp.replace(":", "/")).mkdir(parents=True)
    if kprobes:
        (tracefs / "kprobe_events").write_text("")
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text(KALLSYMS)
    return KernelHooks(tracefs=str(tracefs), kprobe_pmu=str(tmp_path / "none"), kallsyms=str(kallsyms))


def test_availability_on_a_kernel_without_kprobes(tmp_path):
    kernel = _fake_kernel(tmp_path, ["net:netif_rx"], kprobes=False)
    eth_kprobe, eth_tp = BY_NAME["ETH_RECV"].candidates
    assert kernel.why_unavailable(eth_kprobe) == "kprobes not supported"
    assert kernel.why_unavailable(eth_tp) is None
    assert kernel.why_unavailable(BY_NAME["SEND_SKB"].candidates[0]) == "no such tracepoint"


def test_availability_on_a_kernel_with_kprobes(tmp_path):
    kernel = _fake_kernel(tmp_path, [], kprobes=True)
    assert kernel.why_unavailable(BY_NAME["ETH_RECV"].candidates[0]) is None
    assert kernel.why_unavailable(BY_NAME["RECV_SKB"].candidates[0]) is None
    assert kernel.why_unavailable(BY_NAME["TCP_V4_RCV"].candidates[0]) == "no such function"


def test_generic_headers_newest_pair_merged_into_one_tree(tmp_path):
    src = tmp_path / "src"
    for version in ("6.1.0-9", "6.1.0-56"):
        common = src / ("linux-headers-%s-common" % version)
        arch = src / ("linux-headers-%s-amd64" % version)
        (common / "include/linux").mkdir(parents=True)
        (common / "include/linux/skbuff.h").write_text("common " + version)
        (common / "Makefile").write_text("common")
        (arch / "include/generated").mkdir(parents=True)
        (arch / "include/generated/autoconf.h").write_text("arch")
        (arch / "Makefile").write_text("arch")
    (src / "linux-headers-7.0.0-1-common").mkdir()  # no arch part: not a pair
    description, tree = headers.header_tree(release="no-such-release", usr_src=str(src),
                                            cache_dir=str(tmp_path / "cache"), kheaders=str(tmp_path / "none"))
    assert tree.endswith("headers-6.1.0-56-amd64")
    assert "generic headers" in description
    tree = Path(tree)
    assert (tree / "include/linux/skbuff.h").read_text() == "common 6.1.0-56"
    assert (tree / "include/generated/autoconf.h").read_text() == "arch"
    assert (tree / "Makefile").read_text() == "arch"  # the architecture part wins


def test_no_headers_at_all_says_what_to_install(tmp_path):
    with pytest.raises(headers.HeadersError, match="linux-headers"):
        headers.header_tree(release="no-such-release", usr_src=str(tmp_path), cache_dir=str(tmp_path),
                             kheaders=str(tmp_path / "none"))


def test_kernel_symbols_read_again_only_when_modules_change(tmp_path):
    kallsyms, modules = tmp_path / "kallsyms", tmp_path / "modules"
    kallsyms.write_text(KALLSYMS)
    modules.write_text("veth 40960 0 - Live 0x0\n")
    symbols = KernelSymbols(kallsyms=str(kallsyms), modules=str(modules))
    first = symbols.current()
    assert symbols.current() is first
    kallsyms.write_text(KALLSYMS + "ffffffffc1000000 t nft_do_chain\t[nf_tables]\n")
    modules.write_text("veth 40960 0 - Live 0x0\nnf_tables 1 0 - Live 0x0\n")
    assert symbols.current().symbolize(0xffffffffc1000010) == "nft_do_chain+0x10"


HYBRID_MOUNTINFO = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED_MOUNTINFO = """25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
90 25 0:22 /system.slice/x /run/x\\040y rw - cgroup2 cgroup2 rw
"""


def test_the_cgroup_v2_root_is_found_where_it_is_mounted(tmp_path):
    from procfs_fuse.kernel import cgroup
    assert cgroup.v2_mounts(HYBRID_MOUNTINFO) == ["/sys/fs/cgroup/unified"]
    assert cgroup.v2_mounts(UNIFIED_MOUNTINFO) == ["/sys/fs/cgroup"]  # a bind of a subtree is not the root
    assert cgroup.v2_mounts("22 1 0:21 / /proc rw - proc proc rw\n") == []
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(HYBRID_MOUNTINFO)
    assert cgroup.v2_root(str(mountinfo)) == "/sys/fs/cgroup/unified"
    assert cgroup.v2_root(str(tmp_path / "missing")) is None
