"""One activation's life: the program compiled and attached (activation), the
filters and the memo generation (config), the tables read and decoded
(tables). What the controller holds while active."""
from ...kernel.ksyms import KernelSymbols
from . import tables
from .activation import Activation
from .config import FilterConfig
from .settings import DEFAULT_MAX_FLOWS


class BccSession:
    def __init__(self, filters, max_flows=DEFAULT_MAX_FLOWS):
        self.max_flows = max_flows
        self.activation = Activation(max_flows)
        try:
            bpf = self.activation.bpf
            self._tables = {name: bpf[b"dp_" + name.encode()] for name in tables.TABLE_NAMES
                            if name not in tables.OPTIONAL_TABLES or self.activation.nat_hook.chosen}
            self.config = FilterConfig(bpf[b"dp_config"])
            self.config.set_filters(filters)  # before attaching: no packet is counted unfiltered
            symbols = KernelSymbols()
            symbols.current()  # 120,000 symbols read now, not by the first `cat`
            self._decoder = tables.Decoder(self._tables["flows"].Key, self._tables["drops"].Key,
                                           self._tables["slots"].sLeaf, self.activation.reason_names, symbols)
            self.activation.attach()
        except BaseException:
            self.close()
            raise
        self.hooks = self.activation.hooks

    def set_filters(self, filters):
        self.config.set_filters(filters)

    def read(self):
        """A Snapshot of the tables, summed over CPUs."""
        return self._decoder.snapshot(*(tables.read_raw(self._tables[name]) if name in self._tables else None
                                        for name in tables.TABLE_NAMES))

    def clear(self):
        with self.config.memos_off():  # a memo may name a slot's old owner
            tables.clear(self._tables)
        self._decoder.forget()

    def close(self):
        self.activation.close()
