"""Property tests of the command language: any bytes give success or EINVAL,
never another exception, and a rejected write changes no setting."""
import errno

from hypothesis import given, settings
from hypothesis import strategies as st

from procfs_fuse.drop_packet.control.commands import CommandError, parse
from procfs_fuse.drop_packet.control.controller import DropPacketEntry
from procfs_fuse.drop_packet.errors import ErrnoError
from tests.support.fakes import FakeSessions
from tests.support.strategies import WORDS, batches


def settings_lines(entry):
    return [l for l in entry.view().decode().splitlines()[:9] if "last-error" not in l]


@settings(max_examples=500, deadline=None)
@given(batches)
def test_parse_succeeds_or_raises_command_error(data):
    try:
        commands = parse(data)
    except CommandError as e:
        assert str(e)
    else:
        assert commands and all(c.word in WORDS for c in commands)


@settings(max_examples=300, deadline=None)
@given(st.lists(batches, min_size=1, max_size=4))
def test_a_rejected_write_changes_no_setting(writes):
    entry = DropPacketEntry(FakeSessions())  # no injected failures: every byte is tried
    for data in writes:
        before = settings_lines(entry)
        try:
            entry.command(data)
        except ErrnoError as e:
            assert e.errno == errno.EINVAL
            assert settings_lines(entry) == before
