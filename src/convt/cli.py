"""``convt`` command line: show how a framework's parameters map onto the canonical spec.

convt spec torch --kernel-size 4 --stride 2 --padding 1 --input-size 32 32
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from convt.spec import ConvTransposeSpec

# Each framework: (add its arguments, build (spec, kernel, input_size) from parsed args).
FRAMEWORKS: dict[str, tuple[Callable, Callable]] = {}


def _ints(parser, *flags, help, default=None, required=False):
    parser.add_argument(*flags, type=int, nargs="+", default=default, required=required, help=help)


def _common(parser, groups=True, dilation="--dilation"):
    _ints(
        parser, "--kernel-size", "-k", required=True, help="kernel size, one value or one per axis"
    )
    _ints(
        parser,
        "--input-size",
        "-i",
        required=True,
        help="input spatial size, one per axis (sets the number of axes)",
    )
    _ints(parser, "--stride", "-s", default=[1], help="stride (default 1)")
    if dilation:
        _ints(parser, dilation, "-d", default=[1], help="dilation (default 1)")
    if groups:
        parser.add_argument("--groups", "-g", type=int, default=1, help="groups (default 1)")


def _one(values):
    return values[0] if len(values) == 1 else tuple(values)


def _torch_args(parser):
    _common(parser)
    _ints(parser, "--padding", "-p", default=[0], help="padding (default 0)")
    _ints(parser, "--output-padding", default=[0], help="output_padding (default 0)")
    _ints(
        parser,
        "--output-size",
        default=None,
        help="output_size, as ConvTransposeNd.forward takes it",
    )


def _torch_spec(args):
    from convt import torch as framework

    return framework.to_spec(
        len(args.input_size),
        _one(args.stride),
        _one(args.padding),
        _one(args.output_padding),
        args.groups,
        _one(args.dilation),
        kernel_size=_one(args.kernel_size),
        input_size=args.input_size,
        output_size=args.output_size,
    )


def _chainer_args(parser):
    _common(parser, dilation="--dilate")
    _ints(parser, "--pad", "-p", default=[0], help="pad (default 0)")
    _ints(parser, "--outsize", default=None, help="outsize, one per axis")


def _chainer_spec(args):
    from convt import chainer as framework

    n = len(args.input_size)
    return framework.to_spec(
        n,
        _one(args.stride),
        _one(args.pad),
        args.outsize,
        _one(args.dilate),
        args.groups,
        kernel_size=_one(args.kernel_size),
        input_size=args.input_size,
    )


def _chainerx_args(parser):
    _common(parser, groups=False, dilation=None)
    _ints(parser, "--pad", "-p", default=[0], help="pad (default 0)")
    _ints(parser, "--outsize", default=None, help="outsize, one per axis")


def _chainerx_spec(args):
    from convt import chainerx as framework

    n = len(args.input_size)
    return framework.to_spec(
        n,
        _one(args.stride),
        _one(args.pad),
        args.outsize,
        kernel_size=_one(args.kernel_size),
        input_size=args.input_size,
    )


def _padding_arg(value: str):
    """paddle's padding from the command line: SAME, VALID, or integers."""
    if value.upper() in ("SAME", "VALID"):
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"padding must be SAME, VALID or integers, got {value!r}"
        ) from None


def _paddle_args(parser):
    _common(parser)
    parser.add_argument(
        "--padding",
        "-p",
        type=_padding_arg,
        nargs="+",
        default=[0],
        help="SAME, VALID, one int, one per axis, or two per axis "
        "(before_1 after_1 before_2 after_2 ...)",
    )
    _ints(parser, "--output-padding", default=[0], help="output_padding (default 0)")
    _ints(parser, "--output-size", default=None, help="output_size, one per axis")
    parser.add_argument(
        "--data-format",
        default=None,
        help="NCL/NLC, NCHW/NHWC or NCDHW/NDHWC (default channels first)",
    )


def _paddle_spec(args):
    from convt import paddle as framework

    padding = args.padding[0] if len(args.padding) == 1 else list(args.padding)
    return framework.to_spec(
        len(args.input_size),
        _one(args.stride),
        padding,
        _one(args.output_padding),
        _one(args.dilation),
        args.groups,
        args.output_size,
        args.data_format,
        kernel_size=_one(args.kernel_size),
        input_size=args.input_size,
    )


def _megengine_args(parser):
    _common(parser)
    _ints(parser, "--padding", "-p", default=[0], help="padding (default 0)")
    _ints(parser, "--output-padding", default=[0], help="output_padding (default 0)")


def _megengine_spec(args):
    from convt import megengine as framework

    return framework.to_spec(
        len(args.input_size),
        _one(args.stride),
        _one(args.padding),
        _one(args.output_padding),
        _one(args.dilation),
        args.groups,
    )


FRAMEWORKS.update(
    torch=(_torch_args, _torch_spec),
    chainer=(_chainer_args, _chainer_spec),
    chainerx=(_chainerx_args, _chainerx_spec),
    paddle=(_paddle_args, _paddle_spec),
    megengine=(_megengine_args, _megengine_spec),
)


def _kernel(args, n: int) -> tuple[int, ...]:
    from convt._frontend import int_tuple

    return int_tuple(_one(args.kernel_size), n, "--kernel-size", "convt")


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


def _module(name: str):
    import importlib

    return importlib.import_module(f"convt.{name}")


def format_call(params: dict) -> str:
    """The parameters as keyword arguments, ready to paste into a call."""
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def translate(source_args, target: str) -> str:
    """The parameters of the same layer in ``target``'s convention, or why there are none."""
    _, build = FRAMEWORKS[source_args.framework]
    spec = build(source_args)
    kernel = _kernel(source_args, len(source_args.input_size))
    params = _module(target).from_spec(spec, tuple(source_args.input_size), kernel)
    return f"{target}: {format_call(params)}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convt",
        description="Transposed convolution conventions, mapped onto convt's canonical spec "
        "(stride, dilation, crop (lo, hi) per axis, groups, layout).",
        epilog="examples:\n"
        "  convt spec torch --kernel-size 4 --stride 2 --padding 1 --input-size 32 32\n"
        "  convt spec paddle -k 3 -s 2 -p SAME -i 5 5 --data-format NHWC\n"
        "  convt spec chainer -k 3 -s 2 -p 1 --outsize 10 10 -i 5 5\n"
        "  convt translate --from torch --to paddle -k 3 -s 2 -p 1 --output-padding 1 -i 5 5\n"
        "\nframeworks: " + ", ".join(FRAMEWORKS) + "; 'convt spec FRAMEWORK --help' lists "
        "each one's options, named as the framework names them.",
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
    for name, (add_args, _) in FRAMEWORKS.items():
        add_args(fw.add_parser(name, help=f"{name}'s parameters"))
    tr = sub.add_parser(
        "translate",
        help="express a layer given in one convention in another",
        description="Translate a layer's parameters from one framework's convention to "
        "another's, through the canonical spec, or say why the target cannot express it. "
        "After --from and --to come the source framework's options, as for "
        "'convt spec FRAMEWORK'.",
        usage="convt translate --from FRAMEWORK --to FRAMEWORK [source framework's options]",
    )
    tr.add_argument("--from", dest="source", required=True, choices=sorted(FRAMEWORKS))
    tr.add_argument("--to", dest="target", required=True, choices=sorted(FRAMEWORKS))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "translate":
        source = argparse.ArgumentParser(prog=f"convt translate --from {args.source}")
        FRAMEWORKS[args.source][0](source)
        source_args = source.parse_args(rest)
        source_args.framework = args.source
        try:
            print(translate(source_args, args.target))
        except (ValueError, TypeError) as err:
            print(f"convt: {err}", file=sys.stderr)
            return 2
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "spec":
        _, build = FRAMEWORKS[args.framework]
        try:
            spec = build(args)
            n = len(args.input_size)
            kernel = _kernel(args, n)
            out = spec.output_spatial_shape(args.input_size, kernel)
            if any(o < 1 for o in out):
                raise ValueError(
                    f"{args.framework}: the output size would be {out}; every size must be >= 1"
                )
        except (ValueError, TypeError) as err:
            print(f"convt: error: {err}", file=sys.stderr)
            return 2
        print(format_spec(spec, args.input_size, kernel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
