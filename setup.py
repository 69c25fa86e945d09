"""Build knobs for the native (Cython) extensions; all metadata lives in pyproject.toml.

Every ``_native/<name>.pyx`` is compiled into the private submodule ``processor._native.<name>``.
A failed compile fails the build: a service must not ship the slow path silently.
"""

from pathlib import Path

from setuptools import setup

NATIVE = Path(__file__).parent / "_native"


def _extensions():
    sources = sorted(NATIVE.glob("*.pyx"))
    if not sources:
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    exts = [
        Extension(f"processor._native.{src.stem}", [str(src.relative_to(Path(__file__).parent))])
        for src in sources
    ]
    return cythonize(exts, language_level=3, compiler_directives={"binding": False})


setup(ext_modules=_extensions())
