"""No import cycle in esrt, not even through an import inside a function.

import-linter's contracts (pyproject.toml, run by `make test` as `lint-imports`) keep the
layers pointing down and the region apart from mfds, but they do not see two modules of one
package importing each other (a command module and the parser that imports it, say). An import
moved into a function to dodge Python's circular-import error is a cycle all the same. grimp,
the graph library under import-linter, records every import statement, at module level or in a
function: any strongly connected component of more than one module is a cycle, and the failure
shows one with the lines that make it.
"""

import grimp


def strongly_connected(nodes, successors):
    """The strongly connected components (sets) of a directed graph: Tarjan's algorithm, with
    an explicit stack so that a deep import chain cannot exhaust Python's recursion limit."""
    index, lowlink = {}, {}
    stack, on_stack = [], set()
    components = []
    for root in sorted(nodes):
        if root in index:
            continue
        index[root] = lowlink[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(successors(root))))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = lowlink[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    # Descend; `children` resumes where it stopped once `child` is done.
                    work.append((child, iter(sorted(successors(child)))))
                    break
                if child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def one_cycle(component, successors):
    """A cycle through the component's first module, as a list that ends where it starts."""
    start = min(component)
    # Breadth-first within the component, from each module start imports back to start: every
    # path between two members of a component stays inside it.
    came_from = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(successors(node)):
            if child == start:
                path = [node]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return path[::-1] + [start]
            if child in component and child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def describe(graph, component):
    """The component's modules, then one cycle through them with file lines."""
    cycle = one_cycle(component, graph.find_modules_directly_imported_by)
    lines = [f"import cycle among {', '.join(sorted(component))}:"]
    for importer, imported in zip(cycle, cycle[1:]):
        for detail in graph.get_import_details(importer=importer, imported=imported):
            lines.append(f"  {importer} line {detail['line_number']}: "
                         f"{detail['line_contents'].strip()}")
    return "\n".join(lines)


def test_esrt_has_no_import_cycle():
    graph = grimp.build_graph("esrt", cache_dir=None)
    cycles = [component for component in strongly_connected(
        graph.modules, graph.find_modules_directly_imported_by) if len(component) > 1]
    assert not cycles, (
        "\n\n".join(describe(graph, component) for component in cycles) +
        "\n\nmove what both sides need into a module that both import (see pyproject.toml's "
        "[tool.importlinter] for which layer may import which)")


def test_the_cycle_finder_finds_a_cycle_and_nothing_else():
    edges = {"a": {"b"}, "b": {"c", "e"}, "c": {"a"}, "d": {"a"}, "e": set()}
    components = strongly_connected(edges, edges.__getitem__)
    assert sorted(sorted(component) for component in components) == [
        ["a", "b", "c"], ["d"], ["e"]]
    assert one_cycle({"a", "b", "c"}, edges.__getitem__) == ["a", "b", "c", "a"]


def test_the_import_paths_users_rely_on_still_work():
    # esrt.mfds.client is the documented client of mfds for users' scripts; its code now lives
    # below mfds and the region, in esrt.node.
    from esrt.client import (Client, ConnectionFailed, Reply, ServiceError, WireClient, call,
                             service_path)
    from esrt.client.wire import WireClient as WireClientItself
    from esrt.mfds.client import TOKEN_HEADER, MfdsClient, MfdsError, MfdsUnavailable
    from esrt.node import mfds_client

    assert (MfdsClient, MfdsError, MfdsUnavailable, TOKEN_HEADER) == (
        mfds_client.MfdsClient, mfds_client.MfdsError, mfds_client.MfdsUnavailable,
        mfds_client.TOKEN_HEADER)
    assert WireClient is WireClientItself
    assert isinstance(Client("esrt://127.0.0.1:1"), WireClient)
    assert callable(call) and issubclass(Reply, dict)
    assert service_path("srv01.CBLAPP01") == "/services/srv01/CBLAPP01"
    assert issubclass(ServiceError, Exception) and issubclass(ConnectionFailed, Exception)
