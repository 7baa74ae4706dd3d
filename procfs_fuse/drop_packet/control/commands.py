"""The command language of the drop-packet file. Pure: bytes in, commands out.

One write is one batch; each non-empty line is one command. The whole batch
is checked before anything runs, so a bad line changes nothing.
"""
import ipaddress
from dataclasses import dataclass
from typing import Optional

from ..capture.settings import FILTERS, MAX_FLOWS, MAX_MAX_FLOWS

MAX_WRITE = 4096  # a page, like a /proc write

ACTIONS = ("activate", "deactivate", "clear")
IFNAMSIZ = 16  # a device name and its NUL


class CommandError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    word: str
    field: Optional[str] = None  # for filters: the Filters field
    value: object = None         # for filters and max-flows: the value; None: the default


def _parse_port(text):
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise CommandError("bad port %r: want 0..65535" % text)
    return int(text)


def _parse_capacity(text):
    if not text.isdigit() or len(text) > 7 or not 1 <= int(text) <= MAX_MAX_FLOWS:
        raise CommandError("bad capacity %r: want 1..%d" % (text, MAX_MAX_FLOWS))
    return int(text)


def _parse_addr(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise CommandError("bad address %r: want an IPv4 or IPv6 address" % text) from None


def _parse_dev(text):
    if len(text) >= IFNAMSIZ or "/" in text or ":" in text or text in (".", ".."):
        raise CommandError("bad device name %r: want at most %d characters, no / or :" % (text, IFNAMSIZ - 1))
    return text


def _parse_value(word, args):
    """A filter's value from its arguments: None for none or "*" (any)."""
    if word == "netns":  # a name as the report prints it may have spaces: `pid 4242 nginx`
        return " ".join(args) if args and args != ["*"] else None
    if len(args) > 1:
        raise CommandError("%s takes one argument" % word)
    if not args or args[0] == "*":
        return None
    if word == "dev":
        return _parse_dev(args[0])
    return _parse_port(args[0]) if word.endswith("-port") else _parse_addr(args[0])


def parse_line(line):
    words = line.split()
    word, args = words[0], words[1:]
    if word in ACTIONS:
        if args:
            raise CommandError("%s takes no argument" % word)
        return Command(word)
    if word == MAX_FLOWS:
        if len(args) > 1:
            raise CommandError("%s takes one argument" % word)
        return Command(word, None, _parse_capacity(args[0]) if args else None)
    if word in FILTERS:  # no argument, or "*" as the report shows it: any
        return Command(word, FILTERS[word], _parse_value(word, args))
    known = ACTIONS + tuple(FILTERS) + (MAX_FLOWS,)
    raise CommandError("unknown command %r (known: %s)" % (word, ", ".join(known)))


def parse(data: bytes):
    """A list of Commands, or CommandError saying what is wrong."""
    if len(data) > MAX_WRITE:
        raise CommandError("write of %d bytes is over the %d-byte limit" % (len(data), MAX_WRITE))
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise CommandError("junk bytes: commands are ASCII text") from None
    if any(not (c.isprintable() or c in "\t\n") for c in text):
        raise CommandError("junk bytes: control characters in the command")
    commands = [parse_line(line) for line in text.split("\n") if line.strip()]
    if not commands:
        raise CommandError("empty write: no command")
    return commands
