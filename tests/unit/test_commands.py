import ipaddress

import pytest

from procfs_fuse.drop_packet.control.commands import MAX_WRITE, Command, CommandError, parse


def test_actions_and_filters():
    assert parse(b"activate\n") == [Command("activate")]
    assert parse(b"deactivate") == [Command("deactivate")]  # echo -n
    assert parse(b"clear\n") == [Command("clear")]
    assert parse(b"source-addr 198.18.0.1\n") == [
        Command("source-addr", "source_addr", ipaddress.ip_address("198.18.0.1"))]
    assert parse(b"dest-addr 2001:db8::1\n") == [
        Command("dest-addr", "dest_addr", ipaddress.ip_address("2001:db8::1"))]
    assert parse(b"source-port 0\ndest-port 65535\n") == [
        Command("source-port", "source_port", 0), Command("dest-port", "dest_port", 65535)]
    # a namespace as the report names it (resolved when it runs: names.py), spaces and all
    assert parse(b"netns mhR\nnetns pid 4242  nginx\nnetns net:[4026532281]\ndev vRa\n") == [
        Command("netns", "netns", "mhR"), Command("netns", "netns", "pid 4242 nginx"),
        Command("netns", "netns", "net:[4026532281]"), Command("dev", "dev", "vRa")]


@pytest.mark.parametrize("line", [b"dest-port", b"dest-port *", b"source-addr\n", b"  source-addr   \n",
                                  b"netns", b"netns *", b"dev *"])
def test_filter_without_value_clears_it(line):
    (command,) = parse(line)
    assert command.value is None


def test_max_flows():
    assert parse(b"max-flows 1\nmax-flows 1048576\nmax-flows\n") == [
        Command("max-flows", None, 1), Command("max-flows", None, 1048576), Command("max-flows")]


def test_batch_lines_blank_lines_and_spaces():
    assert [c.word for c in parse(b"\n  clear  \n\n\tactivate\n")] == ["clear", "activate"]


@pytest.mark.parametrize("data, reason", [
    (b"bogus\n", "unknown command"),
    (b"Activate\n", "unknown command"),
    (b"activate now\n", "takes no argument"),
    (b"source-addr 198.18.0.256\n", "bad address"),
    (b"dest-addr example.com\n", "bad address"),
    (b"source-port 65536\n", "bad port"),
    (b"source-port -1\n", "bad port"),
    (b"source-port 0x50\n", "bad port"),
    (b"dest-port 000000080\n", "bad port"),
    (b"dest-port 1 2\n", "takes one argument"),
    (b"max-flows 0\n", "bad capacity"),
    (b"max-flows 1048577\n", "bad capacity"),
    (b"max-flows many\n", "bad capacity"),
    (b"dev veth0123456789ab\n", "bad device name"),  # 16 characters: over IFNAMSIZ
    (b"dev a/b\n", "bad device name"),
    (b"dev eth0 eth1\n", "takes one argument"),
    (b"activate\xff\n", "junk bytes"),
    (b"activ\x00ate\n", "junk bytes"),
    (b"clear\x1b[0m\n", "junk bytes"),
    (b"", "empty write"),
    (b"\n\n", "empty write"),
    (b"clear\n" * (MAX_WRITE // 6 + 1), "limit"),
])
def test_bad_input_is_rejected_with_a_reason(data, reason):
    with pytest.raises(CommandError, match=reason):
        parse(data)


def test_one_bad_line_rejects_the_whole_batch():
    with pytest.raises(CommandError, match="bad port"):
        parse(b"activate\ndest-port 99999\n")


def test_write_of_exactly_the_limit_is_accepted():
    data = b"clear\n" * (MAX_WRITE // 6)
    data += b" " * (MAX_WRITE - len(data))
    assert len(parse(data)) == MAX_WRITE // 6
