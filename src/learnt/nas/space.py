"""The CNN search space of Zoph & Le (2017) as data, and architectures as token sequences.

Per layer the controller chooses a filter height, a filter width, a number of filters and
(optionally) a stride; then, at the layer's *anchor point*, one yes/no decision per earlier
layer saying whether that layer's output is an input of this one. A token sequence for
``L`` layers is laid out layer by layer::

    layer 0: fh fw nf [stride]
    layer 1: fh fw nf [stride] skip(0)
    layer 2: fh fw nf [stride] skip(0) skip(1)
    ...

Conv tokens are indices into the choice lists of :class:`SearchSpace`; skip tokens are 0/1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from learnt.errors import ConfigError

CONV_KINDS = ("fh", "fw", "nf", "stride")


@dataclass(frozen=True)
class SearchSpace:
    """Choices per layer (scaled for 8x8 digits: filter sizes as the paper, fewer filters).

    Example:
        >>> s = SearchSpace()
        >>> len(s.layout(3))  # 3 layers x 3 conv tokens + 0 + 1 + 2 skip tokens
        12
    """

    filter_heights: tuple[int, ...] = (1, 3, 5, 7)
    filter_widths: tuple[int, ...] = (1, 3, 5, 7)
    num_filters: tuple[int, ...] = (4, 8, 12, 16)
    strides: tuple[int, ...] = (1,)          # (1,) = no stride token; (1, 2) lets it shrink
    max_layers: int = 6

    def __post_init__(self) -> None:
        for name in ("filter_heights", "filter_widths", "num_filters", "strides"):
            vals = getattr(self, name)
            if len(vals) == 0 or any(int(v) != v or v < 1 for v in vals):
                raise ConfigError(f"search space {name}={vals!r}; expected a non-empty tuple of positive integers")
        for name in ("filter_heights", "filter_widths"):
            if any(v % 2 == 0 for v in getattr(self, name)):
                raise ConfigError(f"search space {name}={getattr(self, name)!r}; expected odd sizes ('same' padding)")
        if self.max_layers < 1:
            raise ConfigError(f"search space max_layers={self.max_layers}; expected >= 1")

    @property
    def conv_kinds(self) -> tuple[str, ...]:
        """The per-layer categorical decisions, in emission order (stride only if it varies)."""
        return CONV_KINDS if len(self.strides) > 1 else CONV_KINDS[:3]

    def choices(self, kind: str) -> tuple[int, ...]:
        """The value list a conv token of ``kind`` indexes."""
        table = {"fh": self.filter_heights, "fw": self.filter_widths, "nf": self.num_filters, "stride": self.strides}
        if kind not in table:
            raise ValueError(f"token kind {kind!r}; expected one of {sorted(table)}")
        return table[kind]

    def layout(self, num_layers: int) -> list[tuple[str, int, int]]:
        """``(kind, layer, j)`` for every token of an ``num_layers``-layer sequence (j: skip source, else -1)."""
        self.check_layers(num_layers)
        out: list[tuple[str, int, int]] = []
        for i in range(num_layers):
            out += [(k, i, -1) for k in self.conv_kinds]
            out += [("skip", i, j) for j in range(i)]
        return out

    def num_tokens(self, num_layers: int) -> int:
        return num_layers * len(self.conv_kinds) + num_layers * (num_layers - 1) // 2

    def check_layers(self, num_layers: int) -> None:
        if not 1 <= num_layers <= self.max_layers:
            raise ValueError(f"num_layers={num_layers}; expected 1..{self.max_layers} (search space max_layers)")

    def size(self, num_layers: int) -> int:
        """Number of distinct architectures with ``num_layers`` layers."""
        per_layer = 1
        for k in self.conv_kinds:
            per_layer *= len(self.choices(k))
        return per_layer ** num_layers * 2 ** (num_layers * (num_layers - 1) // 2)


@dataclass(frozen=True)
class Layer:
    """One conv layer: kernel ``(fh, fw)``, ``nf`` filters, ``stride``, and input layer indices."""

    fh: int
    fw: int
    nf: int
    stride: int = 1
    inputs: tuple[int, ...] = ()


@dataclass(frozen=True)
class Architecture:
    """A child network as data: its layers in order (inputs point to earlier layers)."""

    layers: tuple[Layer, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("an architecture needs at least one layer")
        for i, layer in enumerate(self.layers):
            if any(not 0 <= j < i for j in layer.inputs) or len(set(layer.inputs)) != len(layer.inputs):
                raise ValueError(f"layer {i} inputs {layer.inputs}; expected distinct indices of earlier layers 0..{i - 1}")

    @property
    def outputs(self) -> tuple[int, ...]:
        """Layers no other layer consumes: concatenated into the final hidden layer."""
        used = {j for layer in self.layers for j in layer.inputs}
        return tuple(i for i in range(len(self.layers)) if i not in used)

    def describe(self) -> str:
        """A one-line-per-layer text description (stored in results.json)."""
        lines = []
        for i, layer in enumerate(self.layers):
            src = ", ".join(f"L{j}" for j in layer.inputs) if layer.inputs else "image"
            lines.append(f"L{i}: conv {layer.fh}x{layer.fw}, {layer.nf} filters, stride {layer.stride} <- {src}")
        lines.append("out: concat(" + ", ".join(f"L{i}" for i in self.outputs) + ") -> classifier")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"layers": [{"fh": lay.fh, "fw": lay.fw, "nf": lay.nf, "stride": lay.stride, "inputs": list(lay.inputs)}
                           for lay in self.layers]}

    @classmethod
    def from_dict(cls, d: dict) -> "Architecture":
        return cls(tuple(Layer(x["fh"], x["fw"], x["nf"], x.get("stride", 1), tuple(x.get("inputs", ())))
                         for x in d["layers"]))


def decode_tokens(space: SearchSpace, tokens: list[int] | tuple[int, ...]) -> Architecture:
    """Turn a token sequence (see module docstring) into an :class:`Architecture`.

    The number of layers is inferred from the length; a wrong length or an out-of-range token
    raises ``ValueError`` naming it.
    """
    tokens = [int(t) for t in tokens]
    n = next((L for L in range(1, space.max_layers + 1) if space.num_tokens(L) == len(tokens)), None)
    if n is None:
        raise ValueError(f"{len(tokens)} tokens match no depth 1..{space.max_layers} of this search space")
    layers, pos = [], 0
    for i in range(n):
        vals = {}
        for kind in space.conv_kinds:
            ch, t = space.choices(kind), tokens[pos]
            if not 0 <= t < len(ch):
                raise ValueError(f"{kind} token {t} at layer {i}; expected 0..{len(ch) - 1}")
            vals[kind], pos = ch[t], pos + 1
        skips = tokens[pos:pos + i]
        if any(t not in (0, 1) for t in skips):
            raise ValueError(f"skip tokens {skips} of layer {i}; expected 0 or 1 each")
        pos += i
        layers.append(Layer(vals["fh"], vals["fw"], vals["nf"], vals.get("stride", 1),
                            tuple(j for j, t in enumerate(skips) if t)))
    return Architecture(tuple(layers))


def encode_architecture(space: SearchSpace, arch: Architecture) -> list[int]:
    """The token sequence of ``arch`` (inverse of :func:`decode_tokens`)."""
    space.check_layers(len(arch.layers))
    out = []
    for kind, i, j in space.layout(len(arch.layers)):
        layer = arch.layers[i]
        if kind == "skip":
            out.append(int(j in layer.inputs))
        else:
            value = {"fh": layer.fh, "fw": layer.fw, "nf": layer.nf, "stride": layer.stride}[kind]
            ch = space.choices(kind)
            if value not in ch:
                raise ValueError(f"layer {i} {kind}={value} is not in the search space choices {ch}")
            out.append(ch.index(value))
    return out
