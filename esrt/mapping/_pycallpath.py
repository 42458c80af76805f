"""The pure-Python twin of native/_callpath.c, and the plan description both are built from.

A SEP's call path is: request body -> LINKAGE buffers -> COBOL entry -> reply body. The C
module does the two JSON steps without a Python object per field; :class:`Plan` here has the
same methods and contract and is what runs when the extension was not built or
``ESRT_PUREPYTHON=1``. Pick between them through :class:`esrt.mapping.codec.ProgramCodec`
(``load_json`` / ``dump_json``), not directly.

Contract shared with the C Plan:

* ``load(buffers, body) -> bool``: True when the buffers now hold the request (reset to
  their initial images first); False when the request was not handled, and the caller must
  run the ordinary path (parse, then ``ProgramCodec.load_inputs``), which owns every error
  message. The C Plan declines whatever it is not sure of; this twin declines only
  requests that the ordinary path rejects.
* ``dump(buffers) -> bytes | None``: ``jsonio.dumps(codec.dump_outputs(buffers))``, or None
  when not handled (this twin always handles).
"""

from esrt.mapping import jsonio
from esrt.mapping._pycodec import FieldValueError

# Node kinds, as native/_callpath.c numbers them.
GROUP, STRING, DISPLAY, BINARY, PACKED, OTHER = range(6)


def _node_spec(node):
    """The 11-tuple native/_callpath.c compiles one item from."""
    item = node.item
    name = node.name.encode("utf-8")
    key = jsonio.dumps(node.name) + b":"
    occurs = node.occurs or 0
    if node.children is not None:
        names = [child.name for child in node.children]
        if len(set(names)) != len(names):
            return None
        children = tuple(_node_spec(child) for child in node.children)
        if None in children:
            return None
        return (GROUP, node.offset, node.length, occurs, name, key, 0, 0, 0, 0, children)
    usage = item["usage"]
    if item["type"] == "string":
        return (STRING, node.offset, node.length, occurs, name, key, 0, 0, 0, 0, ())
    if usage in ("comp-1", "comp-2"):
        return (OTHER, node.offset, node.length, occurs, name, key, 0, 0, 0, 0, ())
    digits, scale, signed = item["digits"], item["scale"], bool(item["signed"])
    if usage == "display":
        # Sign modes as in esrt.mapping._pycodec.field_access.
        mode = (1 if item.get("sign") == "leading" else 0) + \
            (2 if item.get("sign_separate", False) else 0)
        kind = DISPLAY
    elif usage in ("binary", "comp-5"):
        mode, kind = int(usage == "comp-5"), BINARY
    elif usage == "comp-3":
        mode, kind = 0, PACKED
    else:
        return (OTHER, node.offset, node.length, occurs, name, key, 0, 0, 0, 0, ())
    return (kind, node.offset, node.length, occurs, name, key, digits, scale, int(signed),
            mode, ())


def plan_spec(codec):
    """The arguments of ``esrt._callpath.Plan(nodes, inputs, outputs, images)`` for a
    :class:`~esrt.mapping.codec.ProgramCodec`, or None when its mapping has a shape the C
    plan does not take (two parameters or fields of one name), so the twin must run."""
    nodes = tuple(_node_spec(node) for node in codec._nodes)
    names = [node.name for node in codec._nodes]
    if None in nodes or len(set(names)) != len(names):
        return None
    inputs = tuple(node.name in codec._inputs for node in codec._nodes)
    outputs = tuple(index for _, index, _, _ in codec._outputs)
    return nodes, inputs, outputs, tuple(codec._images)


class Plan:
    """The twin of ``esrt._callpath.Plan``: the ordinary Python path behind the same contract."""

    def __init__(self, codec):
        self.codec = codec

    def load(self, buffers, body):
        """Reset the buffers and store the request; False when the request is not valid."""
        try:
            values = jsonio.loads(body) if body.strip() else {}
        except ValueError:
            return False
        if not isinstance(values, dict):
            return False
        try:
            self.codec.load_inputs(buffers, values)
        except (FieldValueError, UnicodeEncodeError):
            return False
        return True

    def dump(self, buffers):
        """The out/io parameters as compact JSON bytes."""
        return jsonio.dumps(self.codec.dump_outputs(buffers))
