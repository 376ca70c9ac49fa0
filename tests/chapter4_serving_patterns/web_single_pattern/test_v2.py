"""V2 conformance and T-oracle 5, as every tabular service passes them."""

from tests.support.v2_checks import *  # noqa: F403
