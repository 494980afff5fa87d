"""One user cache (deploy/cache_dirs.py): SRDEPLOY_CACHE_DIR, else XDG_CACHE_HOME/srdeploy, else
~/.cache/srdeploy; every cache of the library derives from it, none lives in the source tree."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from deploy import cache_dirs
from tests.conftest import REPO


def test_env_var_wins_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SRDEPLOY_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dirs.user_cache_dir() == tmp_path / "mine"
    assert cache_dirs.cache_dir("upscale") == tmp_path / "mine" / "upscale"
    monkeypatch.setenv("SRDEPLOY_CACHE_DIR", "")
    assert cache_dirs.user_cache_dir() == tmp_path / "xdg" / "srdeploy"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec ignores relative paths
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dirs.user_cache_dir() == tmp_path / "home" / ".cache" / "srdeploy"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("SRDEPLOY_CACHE_DIR")
    assert cache_dirs.user_cache_dir() == tmp_path / "home" / ".cache" / "srdeploy"
    assert not (tmp_path / "home").exists()  # nothing is created by asking


def test_tests_run_on_their_own_cache():
    """conftest.py points every test process at an empty temp cache, never ~/.cache/srdeploy."""
    root = cache_dirs.user_cache_dir()
    assert root.name.startswith("srdeploy-test-cache-") and root.parent == Path(tempfile.gettempdir())


def test_every_cache_derives_from_the_one_dir(tmp_path, hr_dir):
    """Each library cache, read in a fresh process with SRDEPLOY_CACHE_DIR set; the LR cache is
    written there (and not into the repository's data_cache/)."""
    probe = ("import json, sys\n"
             "from pathlib import Path\n"
             "from deploy.runtime import pair\n"
             "from deploy.evaluation import int8_route\n"
             "from deploy.npu import qairt\n"
             "from deploy.data import images\n"
             "images.cached_pair(sorted(Path(sys.argv[1]).glob('*.png'))[0], 3)\n"
             "print(json.dumps([str(pair.DEFAULT_CACHE), str(int8_route.CACHE_DIR), str(qairt.cache_dir())]))\n")
    env = {**os.environ, "SRDEPLOY_CACHE_DIR": str(tmp_path / "c")}
    out = subprocess.run([sys.executable, "-c", probe, str(hr_dir)], capture_output=True, text=True, cwd=REPO,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    upscale, int8, qairt = map(Path, json.loads(out.stdout.strip().splitlines()[-1]))
    assert (upscale, int8, qairt.parent) == (tmp_path / "c" / "upscale", tmp_path / "c" / "int8_route", tmp_path / "c")
    assert qairt.name.startswith("qairt-")
    assert len(list((tmp_path / "c" / "lr_x3").glob("*.npy"))) == 1


def test_no_cache_path_points_into_the_source_tree():
    """The library names no folder beside its own files as a cache (`data_cache/` is for users'
    data sets, passed as paths)."""
    hits = [str(p.relative_to(REPO)) for p in sorted((REPO / "deploy").rglob("*.py"))
            if p.name != "cache_dirs.py" and ("data_cache" in p.read_text() or "Path.home()" in p.read_text())]
    assert hits == []
