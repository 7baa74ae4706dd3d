"""What a capture is set to: the filters the kernel applies and the flow
table's size, by the words that commands and the report name them with."""
from dataclasses import dataclass, fields
from typing import Optional

DEFAULT_MAX_FLOWS = 16384
MAX_MAX_FLOWS = 1 << 20   # a million flows: 0.36 GB of kernel memory (README: Kernel memory), on any number of CPUs
MAX_FLOWS = "max-flows"   # the command and the settings line


@dataclass(frozen=True)
class Netns:
    """A namespace filter: the inode the kernel compares, the name it was given by."""
    inode: int
    name: str

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Filters:
    source_addr: Optional[object] = None  # ipaddress.IPv4Address | IPv6Address
    source_port: Optional[int] = None
    dest_addr: Optional[object] = None
    dest_port: Optional[int] = None
    netns: Optional[Netns] = None
    dev: Optional[str] = None    # device name, in any namespace

    @property
    def any_set(self):
        return any(getattr(self, f.name) is not None for f in fields(self))


# command word -> Filters field, in the report's order
FILTERS = {"source-addr": "source_addr", "source-port": "source_port",
           "dest-addr": "dest_addr", "dest-port": "dest_port", "netns": "netns", "dev": "dev"}
