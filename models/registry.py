"""Name -> builder registry for the zoo, and loading of shipped, hash-checked weights.

Weights live in `models/weights/<name>_x<scale>-<sha8>.h5`; the 8 hex digits are the start of
the file's sha256 (BasicSR's convention), so a truncated or swapped file is caught before it
produces garbage.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Callable, Optional, Tuple

from models import zoo, zoo_aihub, zoo_big
from models.errors import ModelError
from models._keras import keras

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_WEIGHT_RE = re.compile(r"^(?P<name>[a-z0-9_]+)_x(?P<scale>\d)-(?P<sha>[0-9a-f]{8})\.h5$")




@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., keras.Model]
    scales: Tuple[int, ...]
    paper: str
    #: scales whose trained weights the zoo promises to ship (None: every scale)
    weights_scales: Optional[Tuple[int, ...]] = None

    @property
    def shipped_scales(self) -> Tuple[int, ...]:
        return self.scales if self.weights_scales is None else self.weights_scales


MODELS: dict[str, ModelSpec] = {
    spec.name: spec for spec in [
        ModelSpec("fsrcnn", zoo.fsrcnn, (2, 3, 4), "Dong et al., ECCV 2016"),
        ModelSpec("espcn", zoo.espcn, (2, 3, 4), "Shi et al., CVPR 2016"),
        ModelSpec("xlsr", zoo.xlsr, (2, 3, 4), "Ayazoglu, CVPRW 2021"),
        ModelSpec("abpn", zoo.abpn, (2, 3, 4), "Du et al., CVPRW (MAI) 2021"),
        ModelSpec("imdn_rtc", zoo.imdn_rtc, (2, 3, 4), "Hui et al., ACM MM 2019 (RTC variant)"),
        ModelSpec("edsr_baseline", zoo.edsr_baseline, (2, 3, 4), "Lim et al., CVPRW 2017"),
        # Qualcomm AI Hub's SR models (models/zoo_aihub.py): weights trained here at x4 where weights_scales
        # says so (recipes in models/weights/); the other scales are architectures only (weights_scales ())
        ModelSpec("quicksrnet_small", zoo_aihub.quicksrnet_small, (2, 3, 4), "Berger et al., arXiv 2303.04336 (AI Hub)", (4,)),
        ModelSpec("quicksrnet_medium", zoo_aihub.quicksrnet_medium, (2, 3, 4), "Berger et al., arXiv 2303.04336 (AI Hub)", (4,)),
        ModelSpec("quicksrnet_large", zoo_aihub.quicksrnet_large, (2, 3, 4), "Berger et al., arXiv 2303.04336 (AI Hub)", (4,)),
        ModelSpec("sesr_m5", zoo_aihub.sesr_m5, (2, 3, 4), "Bhardwaj et al., MLSys 2022 (AI Hub)", (4,)),
        ModelSpec("realesrgan_general_x4v3", zoo_aihub.realesrgan_general_x4v3, (2, 3, 4), "Wang et al., ICCVW 2021 (AI Hub)", (4,)),
    ]
}

#: Latency- and compile-only graphs (models/zoo_big.py): the large published SR generators, random
#: initialisation, no weights (weights_scales ()). Kept out of MODELS, the trained zoo that the card,
#: the benches and the tests iterate, so a 16.7M-parameter graph is built only when asked for.
GRAPH_ONLY: dict[str, ModelSpec] = {
    spec.name: spec for spec in [
        ModelSpec("srgan", zoo_big.srgan, (2, 4, 8), "Ledig et al., CVPR 2017 (SRResNet; AI Hub srgan)", ()),
        ModelSpec("rrdbnet", zoo_big.rrdbnet, (2, 4, 8),
                  "Wang et al., ECCVW 2018 (ESRGAN / Real-ESRGAN-x4plus generator; AI Hub esrgan)", ()),
    ]
}


def spec(name: str) -> ModelSpec:
    key = name.lower().replace("-", "_")
    found = MODELS.get(key) or GRAPH_ONLY.get(key)
    if found is None:
        raise ModelError(f"unknown model '{name}'; known models: {', '.join(sorted(MODELS))}; "
                         f"latency/compile-only graphs: {', '.join(sorted(GRAPH_ONLY))}")
    return found


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_path(name: str, scale: int, directory: Path = WEIGHTS_DIR) -> Optional[Path]:
    """The shipped weight file for (name, scale), or None when there is none."""
    found = sorted(p for p in directory.glob(f"{name}_x{scale}-*.h5") if _WEIGHT_RE.match(p.name))
    return found[-1] if found else None


def recipe_path(name: str, scale: int, directory: Path = WEIGHTS_DIR) -> Path:
    """Where tools/train.py records the training recipe of (name, scale), beside its weights."""
    return directory / f"{name}_x{scale}.json"


def available_weights(directory: Path = WEIGHTS_DIR) -> list[tuple[str, int]]:
    out = []
    for p in sorted(directory.glob("*.h5")):
        m = _WEIGHT_RE.match(p.name)
        if m:
            out.append((m["name"], int(m["scale"])))
    return out


def verify_weights(path: Path) -> None:
    """Raise ModelError unless the file's sha256 starts with the hash in its name."""
    m = _WEIGHT_RE.match(path.name)
    if not m:
        raise ModelError(f"weight file name '{path.name}' is not <model>_x<scale>-<sha8>.h5")
    actual = file_sha256(path)[:8]
    if actual != m["sha"]:
        raise ModelError(f"weight file {path} is corrupt or replaced: sha256 starts with {actual}, "
                         f"name says {m['sha']}; restore it with `git checkout -- {path.name}`")


def build(name: str, scale: int, *, input_shape: Optional[Tuple[int, int]] = None,
          weights: bool | str | Path = False) -> keras.Model:
    """Build a zoo model; `input_shape=(h, w)` fixes the LR size (NPU export).

    weights: False (random init), True (shipped weights, hash-checked) or a path to a .h5 file.
    """
    s = spec(name)
    if scale not in s.scales:
        raise ModelError(f"{s.name} has no x{scale}; supported scales: {list(s.scales)}")
    hw = tuple(input_shape) if input_shape else (None, None)
    model = s.builder(scale, hw)
    if weights is True and s.name in GRAPH_ONLY:
        raise ModelError(f"{s.name} is a latency- and compile-only graph: no weights are shipped; use it with "
                         "tools/predict_latency.py, or pass a weight file you trained (--weights)")
    if weights is True:
        path = weights_path(s.name, scale)
        if path is None:
            have = [f"{n} x{k}" for n, k in available_weights()]
            raise ModelError(f"no shipped weights for {s.name} x{scale} (shipped: "
                             f"{', '.join(have) or 'none'}); train them with tools/train.py")
        verify_weights(path)
        model.load_weights(str(path))
    elif weights:
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weight file {path} does not exist")
        if _WEIGHT_RE.match(path.name):
            verify_weights(path)
        try:
            model.load_weights(str(path))
        except (ValueError, OSError) as e:
            raise ModelError(f"cannot load {path} into {s.name} x{scale}: {e}") from None
    return model


def with_fixed_shape(model: keras.Model, name: str, scale: int, hw: Tuple[int, int]) -> keras.Model:
    """Same weights, fixed LR input size: every shape becomes a constant for TFLite/NPUs."""
    fixed = spec(name).builder(scale, tuple(hw))
    fixed.set_weights(model.get_weights())
    return fixed
