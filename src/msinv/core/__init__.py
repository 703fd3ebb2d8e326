"""The shared core: operators with adjoints, provenance, optional imports, solvers, continuation."""

from msinv.core.operator import LinearOperator, dottest
from msinv.core.optional import require
from msinv.core.provenance import code_version, provenance

__all__ = ["LinearOperator", "code_version", "dottest", "provenance", "require"]
