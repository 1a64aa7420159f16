"""``python -m bpgraph``: the same command line as the ``bpgraph`` script."""

from .cli import main

if __name__ == "__main__":
    main()
