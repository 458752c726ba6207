"""Transposed convolutions of today's model zoo, with hyperparameters from the models'
sources (batch and spatial sizes are ours: typical inference or training shapes that fit
a 2-core machine's memory).

Shared by ``benchmarks/accelerators.py`` (deviceless GPU/TPU compiles),
``benchmarks/gpu.py`` (timings on a GPU) and ``tests/test_accelerators.py``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ZooLayer:
    """One layer, in torch's terms (``x_shape`` channels-first, as the model writes it)."""

    name: str
    model: str
    x_shape: tuple[int, ...]  # (N, C_in, *spatial)
    c_out: int
    kernel: int
    stride: int
    padding: int = 0
    output_padding: int = 0
    groups: int = 1
    dilation: int = 1
    dtype: str = "float32"
    channels_last: bool = False
    bias: bool = True

    @property
    def ndim(self) -> int:
        return len(self.x_shape) - 2

    @property
    def w_shape(self) -> tuple[int, ...]:
        """Canonical (torch) weight: ``(C_in, C_out // groups, *kernel)``."""
        return (self.x_shape[1], self.c_out // self.groups, *(self.kernel,) * self.ndim)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input as laid out: channels-last layers move the channels to the end."""
        n, c, *spatial = self.x_shape
        return (n, *spatial, c) if self.channels_last else self.x_shape

    @property
    def kwargs(self) -> dict:
        """torch's keyword arguments for the layer."""
        return dict(
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            groups=self.groups,
            dilation=self.dilation,
        )

    def spec(self):
        import convt.torch as ct

        return dataclasses.replace(
            ct.to_spec(self.ndim, **self.kwargs),
            layout="channels_last" if self.channels_last else "channels_first",
        )

    def flops(self) -> float:
        """2 x the useful multiply-adds: every input element meets its group's kernel."""
        n, c_in, *spatial = self.x_shape
        taps = self.kernel**self.ndim
        return 2.0 * n * c_in * (self.c_out // self.groups) * taps * math.prod(spatial)


def _variant(layer: ZooLayer, suffix: str, **changes) -> ZooLayer:
    return dataclasses.replace(layer, name=layer.name + suffix, **changes)


_BASE = [
    ZooLayer("sam_up1", "SAM / SAM 2 mask decoder 256->64 k2 s2", (1, 256, 64, 64), 64, 2, 2),
    ZooLayer("sam_up2", "SAM / SAM 2 mask decoder 64->32 k2 s2", (1, 64, 128, 128), 32, 2, 2),
    ZooLayer("maskrcnn", "Mask R-CNN mask head 256->256 k2 s2", (32, 256, 14, 14), 256, 2, 2),
    ZooLayer("yolo_proto", "YOLO-seg Proto 64->64 k2 s2", (4, 64, 80, 80), 64, 2, 2),
    ZooLayer("dpt_4x", "Depth Anything V2 DPT 256->256 k4 s4", (1, 256, 37, 37), 256, 4, 4),
    ZooLayer("dpt_2x", "Depth Anything V2 DPT 512->512 k2 s2", (1, 512, 37, 37), 512, 2, 2),
    ZooLayer("dcgan_mid", "DCGAN 512->256 k4 s2 p1", (64, 512, 4, 4), 256, 4, 2, 1),
    ZooLayer("dcgan_head", "DCGAN head 64->3 k4 s2 p1", (64, 64, 32, 32), 3, 4, 2, 1),
    ZooLayer("pix2pix", "pix2pix U-Net 256 1024->512 k4 s2 p1", (4, 1024, 8, 8), 512, 4, 2, 1),
    ZooLayer(
        "cyclegan", "CycleGAN ResNet 256->128 k3 s2 p1 op1", (1, 256, 64, 64), 128, 3, 2, 1, 1
    ),
    ZooLayer(
        "monai_unet3d", "MONAI UNet 3-D 128->64 k3 s2 p1 op1", (1, 128, 16, 16, 16), 64, 3, 2, 1, 1
    ),
    ZooLayer("unetr", "UNETR 3-D 768->128 k2 s2", (1, 768, 8, 8, 8), 128, 2, 2, bias=False),
    ZooLayer("hifigan", "HiFi-GAN v1 512->256 k16 s8 p4", (4, 512, 64), 256, 16, 8, 4),
    ZooLayer("bigvgan", "BigVGAN v2 1536->768 k8 s4 p2", (2, 1536, 64), 768, 8, 4, 2),
    ZooLayer("encodec", "EnCodec 256->128 k10 s5", (4, 256, 150), 128, 10, 5),
    ZooLayer("dac", "DAC 1536->768 k16 s8 p4", (2, 1536, 64), 768, 16, 8, 4),
    ZooLayer("oobleck", "Stable Audio Oobleck 2048->1024 k16 s8 p4", (1, 2048, 64), 1024, 16, 8, 4),
    ZooLayer(
        "kokoro",
        "Kokoro depthwise 1090 k3 s2 p1 op1",
        (1, 1090, 256),
        1090,
        3,
        2,
        1,
        1,
        groups=1090,
    ),
    ZooLayer("mimi", "Mimi depthwise 512 k4 s2", (4, 512, 100), 512, 4, 2, groups=512),
]
_BY_NAME = {layer.name: layer for layer in _BASE}

ZOO: list[ZooLayer] = [
    *_BASE,
    _variant(_BY_NAME["sam_up1"], "_bf16_nhwc", dtype="bfloat16", channels_last=True),
    _variant(_BY_NAME["dcgan_mid"], "_bf16", dtype="bfloat16"),
    _variant(_BY_NAME["hifigan"], "_bf16", dtype="bfloat16"),
    _variant(_BY_NAME["monai_unet3d"], "_nhwc", channels_last=True),
    _variant(_BY_NAME["mimi"], "_bf16_nlc", dtype="bfloat16", channels_last=True),
]
