"""The contract both sides share: the ticket format and the validators for names, hosts, users and paths.

Standard library only: the runtime side imports it before anything else is installed.
"""

import os

# Where rdev's runtime side was loaded from: the shipped zip, or the folder that holds these packages (a checkout,
# an install). A helper takes it off the PYTHONPATH it hands on: that zip is deleted after the call.
SHIPPED = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The one source of rdev's version: the package's metadata (pyproject.toml reads it from here), `rdev --version`,
# and what a runtime reports in its ticket, where no package metadata travels with the shipped zip.
__version__ = "0.2.0"
