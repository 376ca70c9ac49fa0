"""T-oracles 1-4 and 6 and the input rules, as every tabular service passes them."""

from tests.support.tabular_api_checks import *  # noqa: F403
