"""Kernel address -> "function+0xoff", from /proc/kallsyms."""
import bisect
import re

KALLSYMS = "/proc/kallsyms"
MODULES = "/proc/modules"


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


# "address type name [module]"; one regular expression over the whole text:
# some 120,000 lines, a line-by-line split took twice as long
_TEXT_SYMBOL = re.compile(r"^([0-9a-fA-F]+) [tT] (\S+)", re.MULTILINE)


def text_symbols(kallsyms_text):
    """[(address, name)] of the functions (text symbols) in /proc/kallsyms text."""
    return [(int(address, 16), name) for address, name in _TEXT_SYMBOL.findall(kallsyms_text)]


class Symbolizer:
    def __init__(self, kallsyms_text):
        # address 0: addresses hidden (kptr_restrict), useless for lookups
        symbols = sorted(s for s in text_symbols(kallsyms_text) if s[0])
        self._addresses = [a for a, _ in symbols]
        self._names = [n for _, n in symbols]

    def symbolize(self, address):
        i = bisect.bisect_right(self._addresses, address) - 1
        if i < 0 or not address:
            return "0x%x" % address
        return "%s+0x%x" % (self._names[i], address - self._addresses[i])


class KernelSymbols:
    """The running kernel's symbols, read again only when modules changed."""

    def __init__(self, kallsyms=KALLSYMS, modules=MODULES):
        self._kallsyms, self._modules = kallsyms, modules
        self._seen_modules = None
        self._symbolizer = None

    def current(self):
        """A Symbolizer for now: take one per report, not one per address."""
        modules = _read(self._modules)
        if self._symbolizer is None or modules != self._seen_modules:
            self._symbolizer = Symbolizer(_read(self._kallsyms))
            self._seen_modules = modules
        return self._symbolizer
