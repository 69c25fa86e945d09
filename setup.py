"""Build knobs for the native (Cython) extensions; all metadata lives in pyproject.toml.

Every ``_native/<name>.pyx`` is compiled into the private submodule ``processor._native.<name>``
(hand-written native code whose twin is named in its docstring); the C functions one unit cimports
from another are declared in ``processor/_native/<name>.pxd``. The modules of :data:`TWINS` are
the pure-Python twins themselves compiled by Cython into ``processor._native.<name>``: the same
source, so they cannot drift from the specification. A failed compile fails the build: a service
must not ship the slow path silently.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
NATIVE = ROOT / "_native"
#: The bundled policies (``policies/`` at the root) go into built packages at this place.
POLICY_COPY = "processor/_bundled"

#: processor._native.<name> -> pure-Python source compiled as is.
TWINS = {
    "audit": "processor/records/audit.py",
}


def _extensions():
    sources = sorted(NATIVE.glob("*.pyx"))
    if not sources:
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    exts = [
        Extension(
            f"processor._native.{src.stem}",
            [str(src.relative_to(ROOT))],
            include_dirs=[str(NATIVE.relative_to(ROOT))],
            depends=[str(h.relative_to(ROOT)) for h in NATIVE.glob("*.h")],
        )
        for src in sources
    ]
    exts += [Extension(f"processor._native.{name}", [path]) for name, path in TWINS.items()]
    return cythonize(
        exts,
        language_level=3,
        include_path=[str(ROOT)],
        compiler_directives={"binding": False},
        build_dir="build/cython",
    )


class BuildPy(build_py):
    """Copies ``policies/`` into the package (``processor/_bundled/policies``) of a wheel.

    A checkout and an editable install read ``policies/`` in place
    (``processor.policy.bundled``); an installed wheel has only this copy.
    """

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for src in sorted((ROOT / "policies").rglob("*.yaml")):
            dst = Path(self.build_lib) / POLICY_COPY / src.relative_to(ROOT)
            self.mkpath(str(dst.parent))
            self.copy_file(str(src), str(dst))


setup(ext_modules=_extensions(), cmdclass={"build_py": BuildPy})
