"""The shared core: operators with adjoints, derivative checks, provenance, optional imports, solvers,
continuation; error types (``errors``), output checks and atomic writes (``outputs``), safe
input reading (``inputs``), config value checks (``fields``), interrupts and worker lifetime
(``interrupts``)."""

from msinv.core.operator import LinearOperator, dottest
from msinv.core.optional import require
from msinv.core.provenance import code_version, provenance
from msinv.core.testing import taylor_test

__all__ = ["LinearOperator", "code_version", "dottest", "provenance", "require", "taylor_test"]
