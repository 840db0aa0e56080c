"""Installs delf_tf: DELF/DELG landmark retrieval on TensorFlow 2 / Keras 3."""

import setuptools

setuptools.setup(
    name="delf_tf",
    version="0.1.0",
    description=(
        "DELF and DELG (local and global deep features for landmark retrieval) "
        "on TensorFlow 2 and Keras 3"
    ),
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["delf_tf", "delf_tf.*"]),
    install_requires=[
        "keras>=3.10",
        # The committed *_pb2 modules are generated code of protobuf 6.31.1; any
        # newer runtime accepts them.
        "protobuf>=6.31.1,<8",
        "absl-py>=2.0",
        "numpy>=2.0",
        "scipy>=1.13",
        "scikit-image>=0.24",
        "pillow>=10.0",
        "opencv-python-headless>=4.9",
        "h5py>=3.10",
        "scikit-learn>=1.4",
        "threadpoolctl>=3",
    ],
    # TensorFlow comes from an extra so GPU users are not forced onto the CPU
    # build: `pip install .[cpu]` or `pip install .[gpu]`.
    extras_require={
        "cpu": ["tensorflow-cpu>=2.21"],
        "gpu": ["tensorflow[and-cuda]>=2.21"],
        # ASMK as HOW uses it: faiss k-means for 65,536-word codebooks; the
        # authors' asmk package is only compared against (tests, benchmarks).
        "asmk": ["faiss-cpu>=1.8"],
        # ELFM search: a compiled popcount kernel (NumPy/faiss fallbacks without it).
        "elfm": ["numba>=0.60"],
        "test": ["pytest>=8", "pytest-xdist>=3", "grpcio-tools>=1.75", "faiss-cpu>=1.8",
                 "asmk>=0.1.1", "ruff>=0.15", "numba>=0.60"],
    },
)
