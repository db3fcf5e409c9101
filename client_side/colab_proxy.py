"""`python -I -m client_side.colab_proxy ...`: the module name that Colab hosts' ProxyCommand lines in users'
SSH configs run. It stays here, at the top, so that configs written by any rdev keep working; the guard
itself is `client_side.colab.guard`."""

import sys

from client_side.colab import guard

sys.exit(guard.main(sys.argv[1:]))
