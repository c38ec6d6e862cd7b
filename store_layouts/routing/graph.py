"""The walkable graph as arrays, and shortest walking costs between its key nodes.

`StoreGraph` is built once per layout. `DistanceTable` runs Dijkstra (scipy.sparse.csgraph)
from every key node -- shelf pick points, entrances, checkouts -- for one set of edge
weights; a new table is built when congestion changes the weights.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from store_layouts.model import Layout

logger = logging.getLogger(__name__)

NO_PREDECESSOR = -9999  # what csgraph puts in the predecessor matrix for "none"


@dataclass(frozen=True)
class StoreGraph:
    node_ids: tuple[str, ...]
    index: Mapping[str, int]
    xy: np.ndarray  # (N, 2) metres
    edge_u: np.ndarray  # (E,) node indices
    edge_v: np.ndarray
    edge_length: np.ndarray  # (E,) metres
    zone_edges: Mapping[str, np.ndarray]  # zone id -> indices of the edges it covers
    key_nodes: np.ndarray  # sorted node indices we route between
    edge_of_pair: Mapping[tuple[int, int], int] = field(repr=False)

    @classmethod
    def from_layout(cls, layout: Layout) -> StoreGraph:
        node_ids = tuple(layout.nodes)
        index = {nid: i for i, nid in enumerate(node_ids)}
        xy = np.array([(n.x, n.y) for n in layout.nodes.values()], dtype=float)
        edge_u = np.array([index[e.a] for e in layout.edges], dtype=np.int64)
        edge_v = np.array([index[e.b] for e in layout.edges], dtype=np.int64)
        edge_length = np.array([e.length for e in layout.edges], dtype=float)
        zone_edges = {
            zone.id: np.array([i for i, e in enumerate(layout.edges) if zone.covers(e)],
                              dtype=np.int64)
            for zone in layout.zones.values()
        }
        key = {index[s.node] for s in layout.shelves.values()}
        key |= {index[p.node] for p in (*layout.entrances.values(), *layout.checkouts.values())}
        pairs = {}
        for i, (u, v) in enumerate(zip(edge_u.tolist(), edge_v.tolist(), strict=True)):
            pairs[(u, v)] = pairs[(v, u)] = i
        return cls(node_ids, index, xy, edge_u, edge_v, edge_length, zone_edges,
                   np.array(sorted(key), dtype=np.int64), pairs)

    def weights(self, congestion: Mapping[str, float]) -> np.ndarray:
        """Edge walking costs: length x the largest congestion factor of any zone covering it."""
        factor = np.ones_like(self.edge_length)
        for zone_id, value in congestion.items():
            edges = self.zone_edges.get(zone_id)
            if edges is not None and edges.size:
                factor[edges] = np.maximum(factor[edges], value)
        return self.edge_length * factor

    def path_length(self, path: list[int], weights: np.ndarray | None = None) -> float:
        """Sum of edge lengths (or of `weights`) along a node path."""
        values = self.edge_length if weights is None else weights
        return float(sum(values[self.edge_of_pair[(a, b)]] for a, b in
                         itertools.pairwise(path)))


class DistanceTable:
    """All-pairs shortest walking costs between a graph's key nodes, with paths."""

    def __init__(self, graph: StoreGraph, weights: np.ndarray) -> None:
        self.graph = graph
        self.weights = weights
        n = len(graph.node_ids)
        # One direction per edge is enough: directed=False walks csgraph[i, j] both ways.
        self._csr = csr_matrix((weights, (graph.edge_u, graph.edge_v)), shape=(n, n))
        cost, pred = dijkstra(self._csr, directed=False, indices=graph.key_nodes,
                              return_predecessors=True)
        self._row_of = {int(node): row for row, node in enumerate(graph.key_nodes)}
        self._lock = threading.Lock()  # planners are shared between request threads
        self._cost = cost
        self._pred = pred
        logger.debug("distance table: %d sources x %d nodes", len(graph.key_nodes), n)

    def ensure_source(self, node: int) -> None:
        """Add Dijkstra from a node that is not a key node (e.g. a staff member's position)."""
        with self._lock:
            if node not in self._row_of:
                self._add_source(node)

    def _add_source(self, node: int) -> None:
        cost, pred = dijkstra(self._csr, directed=False, indices=[node],
                              return_predecessors=True)
        # Grow the arrays before publishing the row, so a concurrent reader never sees a
        # row index past their end.
        row = len(self._cost)
        self._cost = np.vstack([self._cost, cost])
        self._pred = np.vstack([self._pred, pred])
        self._row_of[node] = row

    def matrix(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Walking cost from each node in `rows` (sources) to each node in `cols`."""
        return self._cost[np.array([self._row_of[int(r)] for r in rows], dtype=np.int64)][:, cols]

    def cost(self, a: int, b: int) -> float:
        return float(self._cost[self._row_of[a], b])

    def path(self, a: int, b: int) -> list[int]:
        """Node indices of a shortest path from a to b; one of them must be a source."""
        if a not in self._row_of:
            return self.path(b, a)[::-1]
        pred = self._pred[self._row_of[a]]
        nodes = [b]
        while nodes[-1] != a:
            nxt = int(pred[nodes[-1]])
            if nxt == NO_PREDECESSOR:
                raise ValueError(f"no path between nodes {a} and {b}")
            nodes.append(nxt)
        return nodes[::-1]
