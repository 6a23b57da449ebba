"""Scipion plugin for spectools (installed as ``spectools_scipion``).

The protocols, the ``Plugin`` class and the ``pyworkflow.plugin`` entry point
come with the Scipion issue.  This package must never be imported by the
``spectools`` library itself.
"""
