"""The ``il2als`` command line, one module per command group (:mod:`.simulate`, :mod:`.studies`, :mod:`.fitting`);
shared options in :mod:`._common`; the parser and entry point in :mod:`.app`.
"""

from il2als._lazy import attach
from il2als._threads import one_blas_thread

# before anything imports numpy: the commands fill the cores with numba threads or worker processes
one_blas_thread()

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("build_parser", "console", "main",), "app"),
}

__all__, __getattr__, __dir__ = attach(__name__, _EXPORTS)
