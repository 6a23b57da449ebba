"""Installation script for spectools and its Scipion plugin.

Packages are listed explicitly: a bare ``find_packages()`` at the repository
root would install top-level ``protocols`` and ``tests`` packages.  The
Scipion plugin lives in ``protocols/`` and is installed under the import name
``spectools_scipion`` (Scipion imports a plugin by its entry-point name).
"""
import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
INIT = (HERE / "spectools" / "__init__.py").read_text()
VERSION = re.search(r'__version__ = "([^"]+)"', INIT).group(1)
URL = re.search(r'__url__ = "([^"]+)"', INIT).group(1)

setup(
    name="spectools",
    version=VERSION,
    url=URL,
    description=("Averaged power spectra of aligned helical segments, aligned stacks, "
                 "Thon-ring spectra, and a cryoSPARC / RELION / SPIDER / Scipion format bridge"),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=[
        "spectools",
        "spectools.io",
        "spectools.formats",
        "spectools.cli",
        "spectools.ops",
        "spectools.pipelines",
        "spectools.simulate",
        "spectools_scipion",
        "spectools_scipion.protocols",
    ],
    package_dir={"spectools_scipion": "protocols",
                 "spectools_scipion.protocols": "protocols/protocols"},
    package_data={"spectools_scipion": ["protocols.conf"]},
    # Ranges admit Scipion's pins (numpy 1.26.1, scipy <= 1.10, mrcfile <= 1.4.3)
    # as well as current numpy 2.x.
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "mrcfile>=1.4",
        "pandas>=1.5",
        "starfile>=0.5",
        "tqdm>=4.60",
        "matplotlib>=3.5",
        "tifffile>=2022.5",
        # compiled inner loops (spectools/ops/kernels.py); wheels for numpy 1.22 to 2.5
        "numba>=0.59",
    ],
    extras_require={
        # cryosparc-tools: the tests load written .cs files with cryoSPARC's own reader.
        "test": ["pytest>=7", "hypothesis>=6", "cryosparc-tools"],
        # FFTW for the spectrum step (2-4x faster than scipy's pocketfft there); without it
        # spectools falls back to scipy.fft.
        "fftw": ["pyfftw>=0.13"],
        # LZW-compressed TIFF and EER movies; versions before 2026.3 support numpy 1.26.
        "movies": ["imagecodecs"],
        # Beyond one machine: --dask ADDRESS / client= (spectools/pipelines/distributed.py).
        "dask": ["distributed>=2023.1"],
        "scipion": ["scipion-pyworkflow>=3.11", "scipion-em>=3.11", "emtable"],
        # Scipion's own RELION import, used by the plugin's tests (no RELION binary needed).
        "scipion-test": ["scipion-em-relion"],
    },
    entry_points={
        "console_scripts": ["spectools = spectools.cli.main:main"],
        # Scipion imports a plugin by its entry-point *name*: it must be the import name.
        "pyworkflow.plugin": ["spectools_scipion = spectools_scipion"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Bio-Informatics",
    ],
)
