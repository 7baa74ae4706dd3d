"""Property tests of the command language: any bytes give success or EINVAL,
never another exception, and a rejected write changes no setting."""
import errno

from hypothesis import given, settings
from hypothesis import strategies as st

from procfs_fuse.drop_packet.commands import ACTIONS, FILTERS, MAX_FLOWS, CommandError, parse
from procfs_fuse.drop_packet.controller import DropPacketEntry, EntryError
from tests.fakes import FakeSession

WORDS = list(ACTIONS) + list(FILTERS) + [MAX_FLOWS]
# lines that look like commands, so that the search reaches deep into the parser
command_lines = st.builds(
    lambda word, arg: (word + " " + arg).strip(),
    st.sampled_from(WORDS),
    st.one_of(st.just(""), st.just("*"), st.integers(-5, 2_000_000).map(str),
              st.ip_addresses().map(str), st.text(max_size=12)))
batches = st.one_of(
    st.binary(max_size=5000),
    st.lists(command_lines, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
)
# without the fake tracer's injected failures (ports 9 and 13)
batches_without_injection = batches.filter(lambda data: b"9" not in data and b"13" not in data)


def settings_lines(entry):
    return [l for l in entry.render().decode().splitlines()[:9] if "last-error" not in l]


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
@given(st.lists(batches_without_injection, min_size=1, max_size=4))
def test_a_rejected_write_changes_no_setting(writes):
    entry = DropPacketEntry(FakeSession)
    for data in writes:
        before = settings_lines(entry)
        try:
            entry.command(data)
        except EntryError as e:
            assert e.errno == errno.EINVAL
            assert settings_lines(entry) == before
