"""The built wheel, installed into a fresh virtual environment, runs its console scripts.

What it does (cheap enough for every CI run, ~30 s):
  1. copies the checkout (without .git/.venv/outputs) and builds the wheel with
     `pip wheel --no-deps --no-build-isolation` (the test venv's setuptools, no download);
  2. checks the wheel's contents: every package, the shipped configs, an entry point per tool;
  3. creates a fresh venv (`python -m venv --without-pip`) whose only link to the test venv is
     a .pth line putting the test venv's site-packages *after* its own (so TensorFlow & co. are
     not reinstalled, and the checkout's delf_tf is not visible: no PYTHONPATH, cwd elsewhere),
     and `pip install --no-deps --no-index`es the wheel into it;
  4. runs `delf-make-demo-data` (a tiny demo set) and `delf-build-image-dataset` on it, and a
     shipped config by name, all from the installed copy.
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from delf_tf import tools

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                 "demo_output*", ".pytest_cache", "benchmarks")


def _check(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory):
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(_REPO, source, ignore=_IGNORE)
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--no-index", "-q", "-w", str(tmp / "dist"), str(source)])
    (wheel,) = (tmp / "dist").glob("delf_tf-*.whl")
    return wheel


def test_wheel_contents(wheel_path):
    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(wheel.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    for module in ("delf_tf/__init__.py", "delf_tf/__main__.py", "delf_tf/tools/__init__.py",
                   "delf_tf/tools/console.py", "delf_tf/protos/delf_config_pb2.py",
                   "delf_tf/protos/descriptor_set.pb",
                   "delf_tf/configs/r50delg_gldv2clean_config.pbtxt",
                   "delf_tf/configs/index_aggregation_config.pbtxt"):
        assert module in names, module
    for tool in tools.TOOLS:
        assert f"delf_tf/tools/{tool}.py" in names
        assert f"{tools.script_name(tool)} = delf_tf.tools.console:{tool}" in entry_points
    assert not any(n.startswith(("tests/", "tools/", "benchmarks/")) for n in names)
    assert "Requires-Python: >=3.10,<3.14" in metadata
    assert "tensorflow>=2.21; (platform_machine != \"x86_64\"" in metadata  # arm64 / aarch64


def test_installed_wheel_runs_console_scripts(wheel_path, tmp_path):
    venv = tmp_path / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    purelib = _check([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     ).stdout.strip()
    # The test venv's packages (TensorFlow, NumPy, ...) after the fresh venv's own.
    ours = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()]
    with open(os.path.join(purelib, "zz_test_venv.pth"), "w") as f:
        f.write("\n".join(dict.fromkeys(p for p in ours if os.path.isdir(p))) + "\n")
    _check([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
            "--no-index", str(wheel_path)])

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    work = tmp_path / "work"
    work.mkdir()
    run = dict(cwd=work, env=env)
    where = _check([str(python), "-c",
                    "import delf_tf, delf_tf.config as c; print(delf_tf.__file__);"
                    "print(c.ResolveConfigPath('r50delg_gld_config'))"], **run).stdout.split()
    assert all(path.startswith(purelib) for path in where), where

    _check([str(bin_dir / "delf-make-demo-data"), "--output_dir=data", "--num_landmarks=2",
            "--train_per_landmark=3", "--noisy_per_landmark=0", "--queries_per_landmark=1",
            "--easy_per_landmark=1", "--hard_per_landmark=0", "--junk_per_landmark=0",
            "--num_distractors=1", "--image_size=64"], **run)
    assert (work / "data" / "train_clean.csv").is_file()
    _check([str(bin_dir / "delf-build-image-dataset"), "--train_directory=data/train",
            "--train_csv_path=data/train.csv", "--train_clean_csv_path=data/train_clean.csv",
            "--output_directory=tfrecords", "--num_shards=1"], **run)
    assert sorted(os.listdir(work / "tfrecords")), "no TFRecord shards written"
    help_text = subprocess.run([str(python), "-m", "delf_tf.tools.extract_delg_features",
                                "--help"], capture_output=True, text=True, timeout=120, **run)
    assert "--delf_config_path" in help_text.stdout, help_text.stderr[-2000:]
