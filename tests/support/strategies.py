"""Hypothesis strategies of writes to the drop-packet file."""
from hypothesis import strategies as st

from procfs_fuse.drop_packet.control.commands import ACTIONS
from procfs_fuse.drop_packet.capture.settings import FILTERS, MAX_FLOWS

WORDS = list(ACTIONS) + list(FILTERS) + [MAX_FLOWS]
# lines that look like commands, so that the search reaches deep into the parser
command_lines = st.builds(
    lambda word, arg: (word + " " + arg).strip(),
    st.sampled_from(WORDS),
    st.one_of(st.just(""), st.just("*"), st.integers(-5, 2_000_000).map(str),
              st.ip_addresses().map(str), st.text(max_size=12)))
# one write(): any bytes, or lines of commands
batches = st.one_of(
    st.binary(max_size=5000),
    st.lists(command_lines, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
)
