"""``convt`` command line: show how a framework's parameters map onto the canonical spec.

    convt spec torch --kernel-size 4 --stride 2 --padding 1 --input-size 32 32
    convt translate --from torch --to paddle -k 3 -s 2 -p 1 --output-padding 1 -i 5 5

Every convention's options come from its `Convention`; this
module knows no framework by name.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import sys
from collections.abc import Sequence

import numpy as np

from convt import convention as registry
from convt._frontend import int_tuple
from convt.convention import Convention, NotExpressible, Option
from convt.spec import ConvTransposeSpec, Layout


def _padding_value(value: str) -> str | int:
    """A padding word (SAME, VALID, ...) or an integer."""
    try:
        return int(value)
    except ValueError:
        if value.isidentifier():
            return value
        raise argparse.ArgumentTypeError(
            f"padding must be a word such as SAME or integers, got {value!r}"
        ) from None


def _flags(name: str, short: str | None = None) -> list[str]:
    """``--output-padding`` and the framework's own spelling ``--output_padding``."""
    flags = [f"--{name.replace('_', '-')}"]
    if "_" in name:
        flags.append(f"--{name}")
    return flags + ([short] if short else [])


def add_options(parser: argparse.ArgumentParser, convention: Convention) -> None:
    """The common sizes and one flag per framework parameter."""
    parser.add_argument(
        *_flags("kernel_size", "-k"),
        type=int,
        nargs="+",
        required=True,
        help="kernel size, one value or one per axis",
    )
    parser.add_argument(
        *_flags("input_size", "-i"),
        type=int,
        nargs="+",
        required=True,
        help="input spatial size, one per axis (sets the number of axes)",
    )
    for option in convention.options:
        flags = _flags(option.name, option.short)
        if option.kind == "int":
            parser.add_argument(*flags, dest=option.name, type=int, help=option.help)
        elif option.kind == "choice":
            parser.add_argument(*flags, dest=option.name, choices=option.choices, help=option.help)
        elif option.kind in ("padding", "pairs"):
            parser.add_argument(
                *flags, dest=option.name, type=_padding_value, nargs="+", help=option.help
            )
        else:
            parser.add_argument(*flags, dest=option.name, type=int, nargs="+", help=option.help)


def _value(option: Option, values):
    """A parsed option as the framework's function takes it."""
    if option.kind in ("int", "choice"):
        return values
    if option.kind == "sizes":
        return tuple(values)
    if option.kind == "pairs":
        if len(values) == 1 and isinstance(values[0], str):
            return values[0]
        return [tuple(values[i : i + 2]) for i in range(0, len(values), 2)]
    if len(values) == 1:
        return values[0]
    return list(values) if option.kind == "padding" else tuple(values)


def params_from_args(args: argparse.Namespace, convention: Convention) -> dict:
    """The framework parameters given on the command line (left-out ones are absent)."""
    return {
        o.name: _value(o, getattr(args, o.name))
        for o in convention.options
        if getattr(args, o.name) is not None
    }


def spec_from_args(
    args: argparse.Namespace, convention: Convention
) -> tuple[ConvTransposeSpec, tuple[int, ...], tuple[int, ...]]:
    """``(spec, input_size, kernel_size)`` for parsed arguments; checks the output size."""
    input_size = tuple(args.input_size)
    n = len(input_size)
    kernel = int_tuple(tuple(args.kernel_size), n, "kernel_size", convention.name)
    for name, sizes in (("--kernel-size", kernel), ("--input-size", input_size)):
        if any(size < 1 for size in sizes):
            raise ValueError(
                f"{convention.name}: {name} must be >= 1 on every axis (the layer's sizes), "
                f"got {' '.join(map(str, sizes))}"
            )
    spec = convention.spec(
        n, params_from_args(args, convention), kernel_size=kernel, input_size=input_size
    )
    out = spec.output_spatial_shape(input_size, kernel)
    if any(o < 1 for o in out):
        raise ValueError(
            f"{convention.name}: the output size would be {out}; every size must be >= 1"
        )
    return spec, input_size, kernel


def format_spec(spec: ConvTransposeSpec, input_size: Sequence[int], kernel: Sequence[int]) -> str:
    out = spec.output_spatial_shape(input_size, kernel)
    full = spec.full_spatial_shape(input_size, kernel)
    return "\n".join(
        [
            "canonical spec",
            spec.describe(),
            f"kernel:   {tuple(kernel)}",
            f"input spatial shape:  {' '.join(map(str, input_size))}",
            f"full (uncropped):     {' '.join(map(str, full))}",
            f"output spatial shape: {' '.join(map(str, out))}",
        ]
    )


def format_call(params: dict) -> str:
    """The parameters as keyword arguments, ready to paste into a call."""
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _other_layout(spec: ConvTransposeSpec) -> ConvTransposeSpec:
    other: Layout = "channels_last" if spec.layout == "channels_first" else "channels_first"
    return dataclasses.replace(spec, layout=other)


def _weight_mapping(
    source: Convention, target: Convention, spec: ConvTransposeSpec, kernel: Sequence[int]
) -> str:
    """How a weight in ``source``'s layout becomes ``target``'s: a numpy expression
    (an axis permutation and flips, found on an index array) where one exists, else the
    conversion through convt's canonical layout."""
    n, groups = spec.ndim, spec.groups
    canonical = np.arange(2 * groups * 3 * math.prod(kernel)).reshape(2 * groups, 3, *kernel)
    src = np.asarray(source.weight_from_canonical(canonical, ndim=n, groups=groups))
    tgt = np.asarray(target.weight_from_canonical(canonical, ndim=n, groups=groups))
    src_module, tgt_module = registry.MODULES[source.name], registry.MODULES[target.name]
    through = (
        f"{tgt_module}.weight_from_canonical({src_module}.weight_to_canonical("
        f"w, ndim={n}, groups={groups}), ndim={n}, groups={groups})"
    )
    if src.ndim == tgt.ndim:
        for perm in itertools.permutations(range(src.ndim)):
            moved = np.transpose(src, perm)
            if moved.shape != tgt.shape:
                continue
            for count in range(src.ndim + 1):
                for flips in itertools.combinations(range(src.ndim), count):
                    if np.array_equal(np.flip(moved, flips) if flips else moved, tgt):
                        if perm == tuple(range(src.ndim)) and not flips:
                            return "weight: w (the same layout)"
                        expression = f"w.transpose{perm}"
                        if flips:
                            expression = f"np.flip({expression}, {flips})"
                        return f"weight: {expression}  (convt: {through})"
    return f"weight: {through}"


def translate(args: argparse.Namespace, source: Convention, target: Convention) -> str:
    """The parameters of the same layer in ``target``'s convention, how to convert its
    weight, and where the data layout differs, how to move the inputs; or why there is
    no such layer."""
    spec, input_size, kernel = spec_from_args(args, source)
    lines = []
    try:
        params = target.from_spec(spec, kernel_size=kernel, input_size=input_size)
    except NotExpressible as err:
        if "layout" not in str(err) and "channels" not in str(err):
            raise
        # the same layer on data laid out the other way (its reasons, if it fails too)
        moved = _other_layout(spec)
        params = target.from_spec(moved, kernel_size=kernel, input_size=input_size)
        axes = list(range(spec.ndim + 2))
        last = [0, *axes[2:], 1] if spec.layout == "channels_first" else [0, axes[-1], *axes[1:-1]]
        where = "last" if moved.layout == "channels_last" else "first"
        lines.append(
            f"data: {target.name} takes the channels {where}: x.transpose{tuple(last)} before "
            f"the layer, and the inverse after it"
        )
        spec = moved
    if target.call_parameters is not None:
        params = target.call_parameters(params, spec)
    lines.insert(0, f"{target.name}: {format_call(params)}")
    lines.append(_weight_mapping(source, target, spec, kernel))
    bias = np.arange(3.0)
    src_b = np.asarray(source.bias_from_canonical(bias, ndim=spec.ndim))
    tgt_b = np.asarray(target.bias_from_canonical(bias, ndim=spec.ndim))
    if src_b.shape != tgt_b.shape:
        shape = tuple(-1 if d == 3 else d for d in tgt_b.shape)
        lines.append(f"bias: b.reshape{shape}")
    return "\n".join(lines)


def _names() -> list[str]:
    return [c.name for c in registry.conventions()]


def _convention_name(value: str) -> str:
    try:
        return registry.canonical_name(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``convt`` command line: ``spec`` (one subcommand per convention, built from
    the registry) and ``translate``."""
    parser = argparse.ArgumentParser(
        prog="convt",
        description="Transposed convolution conventions, mapped onto convt's canonical spec "
        "(stride, dilation, crop (lo, hi) per axis, groups, layout).",
        epilog="examples:\n"
        "  convt spec torch --kernel-size 4 --stride 2 --padding 1 --input-size 32 32\n"
        "  convt spec paddle -k 3 -s 2 -p SAME -i 5 5 --data-format NHWC\n"
        "  convt spec chainer -k 3 -s 2 -p 1 --outsize 10 10 -i 5 5\n"
        "  convt translate --from torch --to paddle -k 3 -s 2 -p 1 --output-padding 1 -i 5 5\n"
        "\nconventions: " + ", ".join(_names()) + "; 'convt spec NAME --help' lists each "
        "one's options, named as the framework names them (--output-padding or "
        "--output_padding).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    spec = sub.add_parser(
        "spec",
        help="print the canonical spec and output shape for a framework's parameters",
        description="Translate one framework's transposed-convolution parameters into the "
        "canonical spec and print the output spatial shape.",
    )
    fw = spec.add_subparsers(dest="framework", required=True, metavar="FRAMEWORK")
    for convention in registry.conventions():
        add_options(
            fw.add_parser(
                convention.name,
                aliases=list(convention.aliases),
                help=convention.summary or f"{convention.name}'s parameters",
            ),
            convention,
        )
    tr = sub.add_parser(
        "translate",
        help="express a layer given in one convention in another",
        description="Translate a layer's parameters from one framework's convention to "
        "another's, through the canonical spec, or say why the target cannot express it. "
        "After --from and --to come the source framework's options, as for "
        "'convt spec FRAMEWORK'.",
        usage="convt translate --from FRAMEWORK --to FRAMEWORK [source framework's options]",
    )
    tr.add_argument("--from", dest="source", required=True, type=_convention_name)
    tr.add_argument("--to", dest="target", required=True, type=_convention_name)
    return parser


def _fail(message: str) -> int:
    print(f"convt: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line on ``argv`` (default: ``sys.argv[1:]``); the exit status
    (2 for bad arguments)."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "translate":
        source = registry.get(args.source)
        source_parser = argparse.ArgumentParser(prog=f"convt translate --from {source.name}")
        add_options(source_parser, source)
        source_args = source_parser.parse_args(rest)
        try:
            print(translate(source_args, source, registry.get(args.target)))
        except (ValueError, TypeError) as err:  # NotExpressible is a ValueError
            return _fail(str(err))
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    convention = registry.get(args.framework)
    try:
        spec, input_size, kernel = spec_from_args(args, convention)
    except (ValueError, TypeError) as err:
        return _fail(str(err))
    print(format_spec(spec, input_size, kernel))
    return 0


__all__ = ["NotExpressible", "build_parser", "main", "translate"]

if __name__ == "__main__":
    sys.exit(main())
