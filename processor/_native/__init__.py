"""Compiled Cython extensions (built from ``_native/*.pyx`` by ``setup.py``); see processor.native."""
