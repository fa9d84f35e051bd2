"""Where the model server runs: a local process, a Docker container, or KServe on Kubernetes."""
