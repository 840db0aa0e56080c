"""Installs delf_tf: DELF/DELG landmark retrieval on TensorFlow 2 / Keras 3.

Console scripts are generated from `TOOLS` in delf_tf/tools/__init__.py (read here without
importing the package): tool `extract_features` becomes `delf-extract-features`.
The configs/ folder is installed as package data `delf_tf/configs/*.pbtxt`.
"""

import ast
import os

import setuptools

_HERE = os.path.dirname(os.path.abspath(__file__))


def _tools() -> list[str]:
    with open(os.path.join(_HERE, "delf_tf", "tools", "__init__.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "TOOLS"):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("delf_tf/tools/__init__.py defines no TOOLS tuple")


# TensorFlow 2.21 publishes `tensorflow-cpu` wheels for x86-64 only; on macOS arm64 and
# Linux aarch64 the CPU build is the plain `tensorflow` wheel.
_X86 = "(platform_machine == 'x86_64' or platform_machine == 'AMD64')"
_NOT_X86 = "(platform_machine != 'x86_64' and platform_machine != 'AMD64')"

setuptools.setup(
    name="delf_tf",
    version="0.1.0",
    description=(
        "DELF and DELG (local and global deep features for landmark retrieval) "
        "on TensorFlow 2 and Keras 3"
    ),
    license="Apache-2.0",
    license_files=["LICENSE"],
    # TensorFlow 2.21 has wheels for CPython 3.10-3.13.
    python_requires=">=3.10,<3.14",
    packages=setuptools.find_packages(include=["delf_tf", "delf_tf.*"]) + ["delf_tf.configs"],
    package_dir={"delf_tf.configs": "configs"},
    package_data={"delf_tf.configs": ["*.pbtxt"], "delf_tf.protos": ["descriptor_set.pb"]},
    install_requires=[
        "keras>=3.10",
        # TensorFlow 2.21's range; the *_pb2 modules build their messages from
        # delf_tf/protos/descriptor_set.pb with any runtime in it.
        "protobuf>=6.31.1,<8",
        "absl-py>=2.0",
        "numpy>=2.0",
        "scipy>=1.13",
        "pillow>=10.1",  # ImageFont.load_default(size=...) for picture captions
        "opencv-python-headless>=4.9",
        "h5py>=3.10",
        "threadpoolctl>=3",
    ],
    # TensorFlow comes from an extra so GPU users are not forced onto the CPU
    # build: `pip install .[cpu]` or `pip install .[gpu]`.
    extras_require={
        "cpu": [f"tensorflow-cpu>=2.21; {_X86}", f"tensorflow>=2.21; {_NOT_X86}"],
        # CUDA wheels of TensorFlow exist for Linux only.
        "gpu": ["tensorflow[and-cuda]>=2.21; platform_system == 'Linux'"],
        "tensorboard": ["tensorboard>=2.21"],
        "beam": ["apache-beam>=2.60"],
        "faiss": ["faiss-cpu>=1.8"],
        # ASMK as HOW uses it: faiss k-means for 65,536-word codebooks; the
        # authors' asmk package is only compared against (tests, benchmarks).
        "asmk": ["faiss-cpu>=1.8"],
        # ELFM search: a compiled popcount kernel (NumPy/faiss fallbacks without it).
        "elfm": ["numba>=0.60"],
        # The demo data set is cut from scikit-image's photos (also the parity RANSAC backend).
        "demo": ["scikit-image>=0.24"],
        # k-means codebooks for VLAD/ASMK (tools/cluster_delf_features.py).
        "aggregation": ["scikit-learn>=1.4"],
        # setuptools: tests/tools/test_wheel.py builds the wheel without build isolation.
        "test": ["pytest>=8", "pytest-xdist>=3", "grpcio-tools>=1.75", "setuptools>=68",
                 "scikit-image>=0.24", "scikit-learn>=1.4", "faiss-cpu>=1.8", "asmk>=0.1.1",
                 "ruff>=0.15", "numba>=0.60",
                 # The Beam extraction pipeline's tests (DirectRunner); beam pins protobuf < 7.
                 "apache-beam>=2.60"],
    },
    entry_points={
        "console_scripts": [
            f"delf-{tool.replace('_', '-')} = delf_tf.tools.console:{tool}" for tool in _tools()
        ],
    },
)
