"""Storage nodes of the CALDB service: one per SVOM instrument.

Each node owns the HEASARC tree ``data/svom/<instrument>/`` of the CALDB root and its
index ``data/svom/<instrument>/caldb.indx``.  MXT and ECLAIRs were the first nodes; the
VT node was added on request and works the same way (seed presentation, KP-3 ObAS).
"""

from __future__ import annotations

from dataclasses import dataclass

from mxt_pipeline.errors import MXTInputError

__all__ = ["StorageNode", "NODES", "get_node", "TELESCOP"]

#: Mission name of every node.
TELESCOP = "SVOM"


@dataclass(frozen=True)
class StorageNode:
    """One instrument's part of the CALDB."""

    instrument: str
    description: str
    telescop: str = TELESCOP

    @property
    def data_dir(self) -> str:
        """Directory of the node relative to the CALDB root, ``data/svom/mxt``."""
        return f"data/{self.telescop.lower()}/{self.instrument.lower()}"

    @property
    def index_relpath(self) -> str:
        """The node's index relative to the CALDB root."""
        return f"{self.data_dir}/caldb.indx"


#: The nodes served, by instrument name.
NODES: dict[str, StorageNode] = {
    "MXT": StorageNode("MXT", "Microchannel X-ray Telescope"),
    "ECL": StorageNode("ECL", "ECLAIRs coded-mask telescope"),
    "VT": StorageNode("VT", "Visible Telescope"),
}


def get_node(name: str) -> StorageNode:
    """The node of instrument ``name`` (case-insensitive).

    Raises
    ------
    MXTInputError
        Naming the known nodes when ``name`` is not one.
    """
    node = NODES.get(str(name).strip().upper())
    if node is None:
        raise MXTInputError(
            f"unknown instrument {name!r}: the storage nodes are {', '.join(NODES)}"
        )
    return node
