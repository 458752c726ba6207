"""What XLA makes of convt's lowerings on a GPU and a TPU, on a machine with neither.

    ../shared/tools/accelerator-aot.sh ~/.cache/convt-aot        # the two environments
    JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1 JAX_PLATFORMS=cpu PYTHONPATH=src:benchmarks \\
        ~/.cache/convt-aot/gpu/bin/python benchmarks/accelerators.py gpu
    JAX_PLATFORMS=cpu PYTHONPATH=src:benchmarks \\
        ~/.cache/convt-aot/tpu/bin/python benchmarks/accelerators.py tpu [--layers ...]

``gpu``: every zoo layer (`zoo.ZOO`) compiled for an NVIDIA H100 (SXM) target, forward,
input gradient and weight gradient apart, for convt's ``auto`` (traced on this CPU
host; `jax.lax.platform_dependent` picks the GPU's lowering when the program is lowered
for the GPU) and for the plain lhs-dilated form (``jax.lax.conv_transpose``'s). Per
program: the library kernels (cuDNN convolutions with their windows, cuBLAS/Triton
GEMMs), convolutions left to XLA, interior (zero-stuffing) pads, and the largest buffer
against the largest of input, weight and output.

``tpu``: forward, input gradient and weight gradient of every lowering on TPU v5e and
v6e targets, each with the compiler's own time estimate
(``cost_analysis()["optimal_seconds"]``; negative where it has none), and forward +
backward as their sum. ``ALLOW_MULTIPLE_LIBTPU_LOAD=1`` lets several processes load
libtpu at once.

These are the compilers' decisions and estimates, not timings. Results go to
``benchmarks/results/accelerators_{gpu,tpu}.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import convt
from zoo import ZOO, ZooLayer

H100_TARGET = Path(__file__).resolve().parents[2] / "shared" / "tools" / "h100_sxm.txtpb"
DOC = Path(__file__).resolve().parents[1] / "docs" / "accelerators.md"
RESULTS = Path(__file__).resolve().parent / "results"
DIRECTIONS = ("forward", "input gradient", "weight gradient")
_BYTES = {"f64": 8, "f32": 4, "bf16": 2, "f16": 2, "s32": 4, "pred": 1, "s8": 1, "u8": 1}
_SHAPE = re.compile(r"\b(f64|f32|bf16|f16|s32|pred)\[([\d,]*)\]")


# ----------------------------------------------------------------------------------------
# Programs


def programs(layer: ZooLayer, method: str, sharding=None) -> dict[str, tuple]:
    """``direction -> (function, argument shapes)``: the forward (with the bias, if the
    layer has one) and each gradient alone, the cotangent an argument."""
    spec, dtype = layer.spec(), jnp.dtype(layer.dtype)
    out_shape = spec.output_shape(layer.input_shape, layer.w_shape)

    def struct(shape):
        return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)

    x, w, g = struct(layer.input_shape), struct(layer.w_shape), struct(out_shape)
    b = struct((layer.c_out,))

    def f(x, w, b=None):
        return convt.conv_transpose(x, w, b, spec=spec, method=method)

    def input_gradient(x, w, g):
        return jax.vjp(lambda x: f(x, w), x)[1](g)[0]

    def weight_gradient(x, w, g):
        return jax.vjp(lambda w: f(x, w), w)[1](g)[0]

    return {
        "forward": (f, (x, w, b) if layer.bias else (x, w)),
        "input gradient": (input_gradient, (x, w, g)),
        "weight gradient": (weight_gradient, (x, w, g)),
    }


# ----------------------------------------------------------------------------------------
# XLA:GPU's optimised HLO


def h100_sharding():
    """A replicated sharding on one H100 (SXM) of a deviceless topology."""
    from jax.experimental import topologies
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    topology = topologies.get_topology_desc(
        platform="cuda",
        topology_name="",
        topology="1 x 1 x 1",
        target_config=H100_TARGET.read_text(),
    )
    return NamedSharding(topologies.make_mesh(topology, (1,), ("x",)), P())


def _array_bytes(text: str) -> list[int]:
    return [
        _BYTES[t] * math.prod(int(d) for d in dims.split(",") if d)
        for t, dims in _SHAPE.findall(text)
    ]


def _computations(hlo: str) -> dict[str, list[str]]:
    bodies, name = {}, None
    for line in hlo.splitlines():
        m = re.match(r"(?:ENTRY )?%(\S+) .*\{$", line)
        if m and not line.startswith(" "):
            name = m.group(1)
            bodies[name] = []
        elif name and line.startswith(" "):
            bodies[name].append(line.strip())
    return bodies


def gpu_structure(hlo: str, layer: ZooLayer) -> dict:
    """The kernels and buffers of one compiled program (XLA:GPU's optimised HLO text).

    ``kernels``: cuDNN convolutions (``bw-input``, ``forward``, ``bw-filter``) with their
    window sizes, and GEMMs (``gemm``: cuBLAS or a Triton GEMM fusion); ``xla_convolutions``:
    convolutions XLA left to itself; ``interior_pads``: zero-stuffing pads;
    ``windows_ok``: every convolution window within the dilated kernel's extent on each
    axis; ``largest_ratio``: the largest buffer XLA materialises (fused computations
    excluded, cuDNN workspaces too) over the largest of input, weight and output.
    """
    bodies = _computations(hlo)
    fused = set()
    for body in bodies.values():
        for line in body:
            if " fusion(" in line:
                fused.update(re.findall(r"calls=%([\w.\-]+)", line))
    extent = [layer.dilation * (layer.kernel - 1) + 1] * layer.ndim
    kernels, xla_convs, interior, largest, windows_ok = [], 0, 0, 0, True
    names = {
        "convBackwardInput": "bw-input",
        "convForward": "forward",
        "convBackwardFilter": "bw-filter",
        "convBiasActivationForward": "forward",
    }
    for name, body in bodies.items():
        for line in body:
            head = line.split(" metadata=")[0]
            m = re.search(r'custom_call_target="__cudnn\$(\w+)"', head)
            if m:
                size = re.search(r"window=\{size=([\dx]+)", head)
                window = tuple(int(v) for v in size.group(1).split("x")) if size else ()
                kernels.append(
                    f"{names.get(m.group(1), m.group(1))} {size.group(1) if size else ''}"
                )
                windows_ok &= all(s <= e for s, e in zip(window, extent))
            elif re.search(r'custom_call_target="__cublas', head) or (
                " fusion(" in head and "kind=kCustom" in head and "gemm" in head
            ):
                kernels.append("gemm")
            elif " convolution(" in head:
                xla_convs += 1
            if " pad(" in head:
                config = re.search(r"padding=([\d_x\-]+)", head)
                if config and any(
                    len(p.split("_")) == 3 and int(p.split("_")[2]) > 0
                    for p in config.group(1).split("x")
                ):
                    interior += 1
            if name not in fused:
                result = head.split(" = ", 1)[1] if " = " in head else ""
                shapes = _array_bytes(
                    result.split("(")[0]
                    if result.startswith("(") is False
                    else result.split(")")[0]
                )
                largest = max([largest, *shapes])
    itemsize = jnp.dtype(layer.dtype).itemsize
    spec = layer.spec()
    operands = [
        math.prod(layer.input_shape),
        math.prod(layer.w_shape),
        math.prod(spec.output_shape(layer.input_shape, layer.w_shape)),
    ]
    return dict(
        kernels=sorted(set(kernels)),
        xla_convolutions=xla_convs,
        interior_pads=interior,
        windows_ok=bool(windows_ok),
        largest_ratio=round(largest / (itemsize * max(operands)), 2),
    )


def _normalised(hlo: str) -> str:
    """Optimised HLO without metadata and instruction names."""
    hlo = re.sub(r", metadata=\{[^}]*\}", "", hlo)
    hlo = re.sub(r"%[\w\-.]+", "%v", hlo)
    return "\n".join(line for line in hlo.splitlines() if line.startswith((" ", "ENTRY")))


def is_clean(structure: dict) -> bool:
    """Library kernels only, no zero-stuffing, windows within the kernel's reach, no
    buffer above 2x the largest operand."""
    return (
        bool(structure["kernels"])
        and structure["xla_convolutions"] == 0
        and structure["interior_pads"] == 0
        and structure["windows_ok"]
        and structure["largest_ratio"] <= 2.0
    )


def gpu_report(layers, methods) -> list[dict]:
    sharding = h100_sharding()
    rows = []
    for layer in layers:
        for method in methods:
            if not applicable(layer, method):
                continue
            row = dict(layer=layer.name, model=layer.model, method=method)
            chosen = convt.choose_method(layer.spec(), layer.w_shape, "gpu", layer.input_shape)
            explicit = programs(layer, chosen, sharding)
            same = True
            for direction, (f, args) in programs(layer, method, sharding).items():
                hlo = jax.jit(f).lower(*args).compile().as_text()
                row[direction] = gpu_structure(hlo, layer)
                if method == "auto":  # what a GPU host traces: the GPU's choice by name
                    g, g_args = explicit[direction]
                    other = jax.jit(g).lower(*g_args).compile().as_text()
                    same &= _normalised(hlo) == _normalised(other)
            row["clean"] = all(is_clean(row[d]) for d in DIRECTIONS)
            if method == "auto":
                row["chosen"], row["same_as_gpu_host"] = chosen, bool(same)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


# ----------------------------------------------------------------------------------------
# TPU: the compiler's estimates


def tpu_sharding(generation: str):
    from jax.experimental import topologies
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    topology = topologies.get_topology_desc(topology_name=f"{generation}:2x2", platform="tpu")
    return NamedSharding(Mesh(np.array(topology.devices[:1]), ("x",)), P())


_ESTIMATES: dict[str, float] = {}


def tpu_estimate(f, args) -> float:
    """The TPU compiler's ``optimal_seconds`` (negative: no estimate; libtpu counts -1 s
    for each operation it cannot estimate). Programs that lower to the same StableHLO
    (``adjoint``'s forward is ``lhs_dilated``'s, say) are compiled once."""
    lowered = jax.jit(f).lower(*args)
    key = re.sub(r"loc\([^)]*\)", "", lowered.as_text())
    if key not in _ESTIMATES:
        cost = lowered.compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        _ESTIMATES[key] = float(cost.get("optimal_seconds", -1.0))
    return _ESTIMATES[key]


def tpu_report(layers, methods, generations) -> list[dict]:
    """Per generation, layer and lowering: the estimates of the forward and of each
    gradient alone (libtpu gives no estimate for many programs that compute values and
    gradients together), and their sum as forward + backward."""
    rows = []
    for generation in generations:
        sharding = tpu_sharding(generation)
        for layer in layers:
            for method in methods:
                if not applicable(layer, method):
                    continue
                start = time.perf_counter()
                row = dict(generation=generation, layer=layer.name, method=method)
                for direction, (f, args) in programs(layer, method, sharding).items():
                    row[direction] = round(tpu_estimate(f, args) * 1e6, 2)
                known = all(row[d] >= 0 for d in DIRECTIONS)
                row["forward+backward"] = (
                    round(sum(row[d] for d in DIRECTIONS), 2) if known else None
                )
                row["compile_s"] = round(time.perf_counter() - start, 1)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def applicable(layer: ZooLayer, method: str) -> bool:
    nonoverlapping = layer.kernel == layer.stride and layer.dilation == 1
    depthwise = layer.groups == layer.x_shape[1]
    parts = method.split("/")
    return ("matmul" not in parts or nonoverlapping) and ("tapsum" not in parts or depthwise)


# ----------------------------------------------------------------------------------------


def _kernels(structure: dict) -> str:
    text = ", ".join(structure["kernels"]) or "none"
    if structure["xla_convolutions"]:
        text += f", {structure['xla_convolutions']} XLA convolution(s)"
    if structure["interior_pads"]:
        text += ", **zero-stuffed**"
    if not structure["windows_ok"]:
        text += " (**window beyond the kernel**)"
    return text


def gpu_markdown(rows: list[dict]) -> str:
    """One line per layer: ``auto``'s kernels per direction against the plain form's."""
    by_layer: dict[str, dict] = {}
    for row in rows:
        by_layer.setdefault(row["layer"], {})[row["method"]] = row
    lines = [
        "| layer | `auto` on GPU | forward | input gradient | weight gradient "
        "| largest buffer / operand | `lhs_dilated` (jax.lax): weight gradient | its largest |",
        "| --- | --- | --- | --- | --- | ---: | --- | ---: |",
    ]
    for methods in by_layer.values():
        auto, plain = methods.get("auto"), methods.get("lhs_dilated")
        if auto is None:
            continue
        layer = next(z for z in ZOO if z.name == auto["layer"])
        chosen = auto["chosen"]
        largest = max(auto[d]["largest_ratio"] for d in DIRECTIONS)
        cells = [auto["model"] + _variant_note(layer), f"`{chosen}`"]
        cells += [_kernels(auto[d]) for d in DIRECTIONS] + [f"{largest:.2f}"]
        if plain is not None:
            plain_largest = max(plain[d]["largest_ratio"] for d in DIRECTIONS)
            cells += [_kernels(plain["weight gradient"]), f"{plain_largest:.2f}"]
        else:
            cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    clean = sum(1 for r in rows if r["method"] == "auto" and r["clean"])
    total = sum(1 for r in rows if r["method"] == "auto")
    plain_clean = sum(1 for r in rows if r["method"] == "lhs_dilated" and r["clean"])
    plain_total = sum(1 for r in rows if r["method"] == "lhs_dilated")
    lines.append("")
    same = sum(1 for r in rows if r["method"] == "auto" and r["same_as_gpu_host"])
    lines.append(
        f"Clean in all three directions: `auto` {clean} of {total} layers; "
        f"`lhs_dilated` {plain_clean} of {plain_total}. `auto` compiled from this CPU host "
        f"is the GPU's choice by name (what a GPU host traces) on {same} of {total}."
    )
    return "\n".join(lines)


def _variant_note(layer: ZooLayer) -> str:
    notes = [layer.dtype] if layer.dtype != "float32" else []
    notes += ["channels-last"] if layer.channels_last else []
    return f" ({', '.join(notes)})" if notes else ""


def best_pair(estimates: dict[str, dict]) -> tuple[str, str]:
    """The fastest forward and the fastest backward (input + weight gradient) among the
    lowerings with estimates: ``(forward, backward)``."""
    forward = min(
        (m for m, e in estimates.items() if e["forward"] >= 0),
        key=lambda m: estimates[m]["forward"],
    )
    backward = min(
        (m for m, e in estimates.items() if min(e["input gradient"], e["weight gradient"]) >= 0),
        key=lambda m: estimates[m]["input gradient"] + estimates[m]["weight gradient"],
    )
    return forward, backward


def pair_estimate(estimates: dict[str, dict], forward: str, backward: str) -> float:
    """Forward + backward of ``"forward/backward"``: values from one lowering, the
    derivatives' programs of the other (`convt.lowering.split`); -1 without an
    estimate."""
    parts = [
        estimates[forward]["forward"],
        estimates[backward]["input gradient"],
        estimates[backward]["weight gradient"],
    ]
    return sum(parts) if min(parts) >= 0 else -1.0


def recorded_layers(rows: list[dict], generation: str):
    """``(zoo layer, {method: estimates})`` for each zoo layer with estimates on
    ``generation``, in the zoo's order."""
    for layer in ZOO:
        estimates = {
            r["method"]: r
            for r in rows
            if r["generation"] == generation and r["layer"] == layer.name
        }
        if estimates:
            yield layer, estimates


def choice_ratios(estimates: dict[str, dict], chosen: str) -> tuple[float, float]:
    """``chosen``'s forward and forward + backward estimates over the best lowering's
    (or pair's); negative where ``chosen`` has no estimate."""
    forward, _, backward = chosen.partition("/")
    best_f, best_b = best_pair(estimates)
    ratio_f = estimates[forward]["forward"] / estimates[best_f]["forward"]
    ours = pair_estimate(estimates, forward, backward or forward)
    return ratio_f, ours / pair_estimate(estimates, best_f, best_b)


def tpu_markdown(rows: list[dict]) -> str:
    """Per generation and layer: every lowering's estimates, the best forward and
    backward, and ``auto``'s choice against them."""
    lines = []
    generations = sorted({r["generation"] for r in rows}, reverse=True)
    for generation in generations:
        lines += [
            f"**TPU {generation}**: estimates in microseconds, forward / input gradient / "
            "weight gradient (`-` where libtpu gave none); `auto`'s forward and forward + "
            "backward against the best lowering or pair (bold: above 1.1)",
            "",
            "| layer | " + " | ".join(f"`{m}`" for m in _methods(rows)) + " | best pair "
            "| `auto` | `auto` / best, forward | forward + backward |",
            "| --- | " + " | ".join("---" for _ in _methods(rows)) + " | --- | --- | ---: | ---: |",
        ]
        for layer, estimates in recorded_layers(rows, generation):
            cells = [layer.model + _variant_note(layer)]
            for method in _methods(rows):
                e = estimates.get(method)
                cells.append("" if e is None else " / ".join(_us(e[d]) for d in DIRECTIONS))
            chosen = convt.choose_method(layer.spec(), layer.w_shape, "tpu", layer.input_shape)
            ratio_f, ratio_fb = choice_ratios(estimates, chosen)
            best_f, best_b = best_pair(estimates)
            pair = best_f if best_f == best_b else f"{best_f}/{best_b}"
            cells += [f"`{pair}`", f"`{chosen}`", _ratio(ratio_f), _ratio(ratio_fb)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _methods(rows) -> list[str]:
    return list(dict.fromkeys(r["method"] for r in rows))


def _ratio(ratio: float) -> str:
    if ratio < 0:
        return "-"
    return f"**{ratio:.2f}**" if ratio > 1.1 else f"{ratio:.2f}"


def _us(value: float) -> str:
    return "-" if value < 0 else f"{value:.0f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=["gpu", "tpu"])
    parser.add_argument("--layers", nargs="*", default=[layer.name for layer in ZOO])
    parser.add_argument("--methods", nargs="*")
    parser.add_argument("--generations", nargs="*", default=["v5e", "v6e"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite the .md from the .json"
    )
    args = parser.parse_args(argv)
    layers = [layer for layer in ZOO if layer.name in args.layers]
    path = args.out / f"accelerators_{args.target}.json"
    if args.markdown_only:
        rows = json.loads(path.read_text())["rows"]
    elif args.target == "gpu":
        rows = gpu_report(layers, args.methods or ["auto", "lhs_dilated"])
    else:
        methods = args.methods or [m for m in convt.lowering.LOWERINGS if m != "phase"]
        rows = tpu_report(layers, methods, args.generations)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.markdown_only:
        path.write_text(json.dumps(dict(jax=jax.__version__, rows=rows), indent=1) + "\n")
    markdown = gpu_markdown(rows) if args.target == "gpu" else tpu_markdown(rows)
    path.with_suffix(".md").write_text(markdown + "\n")
    if args.out.resolve() == RESULTS.resolve():  # the recorded results: the docs show them
        embed(DOC, path.with_suffix(".md").name, markdown)
    print(f"wrote {path} and its .md", file=sys.stderr)


def embedded(text: str, name: str) -> str:
    """The table between ``<!-- name -->`` and the next ``<!-- end -->`` of a page."""
    start = text.index(f"<!-- {name} -->\n") + len(f"<!-- {name} -->\n")
    return text[start : text.index("<!-- end -->", start)].strip()


def embed(doc: Path, name: str, markdown: str) -> None:
    """Puts ``markdown`` between the page's markers for ``name`` (the docs show the
    results file as it is; tests/test_accelerators.py checks they agree)."""
    text = doc.read_text()
    old = embedded(text, name)
    marker = f"<!-- {name} -->\n"
    head, _, rest = text.partition(marker)
    tail = rest[rest.index("<!-- end -->") :]
    doc.write_text(f"{head}{marker}\n{markdown.strip()}\n\n{tail}" if old != markdown else text)


if __name__ == "__main__":
    main()
