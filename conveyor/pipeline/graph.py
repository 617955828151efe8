"""Cycle detection for the `needs` graph, reported one readable cycle per tangle."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence


def find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, e.g. ["a", "b", "c", "a"].

    `graph` maps each node to the nodes it points at, in insertion (file) order. A tangle of many
    overlapping cycles yields only its shortest cycle through its earliest node: one clear error
    beats a combinatorial list. Cycles come in order of their first node.
    """
    order = {name: position for position, name in enumerate(graph)}
    cycles = []
    for component in _components(graph):
        members = set(component)
        start = min(component, key=lambda name: order.get(name, len(order)))
        if len(component) > 1 or start in graph.get(start, ()):
            cycles.append(_shortest_cycle(graph, start, members))
    cycles.sort(key=lambda cycle: order.get(cycle[0], len(order)))
    return cycles


def _components(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components.

    Recursive: callers bound the graph (MAX_JOBS nodes), far below the interpreter's limit.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                on_stack.discard(member)
                component.append(member)
            on_stack.discard(node)
            components.append([node, *component])

    for node in graph:
        if node not in index:
            visit(node)
    return components


def _shortest_cycle(graph: Mapping[str, Sequence[str]], start: str, members: set[str]) -> list[str]:
    # Breadth-first, following edges in their written order, so the answer is deterministic.
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in graph.get(node, ()):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if target in members and target not in parents:
                parents[target] = node
                queue.append(target)
    raise AssertionError(f"{start!r} is on no cycle")
