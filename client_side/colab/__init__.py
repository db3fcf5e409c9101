"""Google Colab as rdev uses it: Google's colab CLI, its sessions, the ProxyCommand guard, the notebook cell."""
