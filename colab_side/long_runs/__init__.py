"""Long runs on borrowed GPUs, on the runtime side: runs that outlive the connection (`runs`, the wrapper a run's
launcher execs, a Slurm cluster's batch runs), the notices before a runtime ends, and the idle stop."""
