"""Notebooks on the runtime side: the Jupyter server Colab's "Connect to a local runtime" reaches (`rdev jupyter`),
the Python environment it runs in, and the environment a Colab kernel hands to SSH sessions (`kernel_env`)."""
