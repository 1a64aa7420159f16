"""How much a graph file may hold, and how closely a replayed op must match; raise them for files
you trust (``bpgraph.io.limits.MAX_NODES = 10**6``)."""

MAX_FILE_BYTES = 256 * 2**20  # a bigger file is refused before it is parsed
MAX_NODES = 100_000
MAX_ELEMENTS = 10_000_000  # in all of a file's arrays, and in any one op's result; checked from shapes
MAX_DEPTH = 32  # dimensions per array, and nesting levels of the meta data
MAX_META_ITEMS = 100_000  # values in the meta data, counting every list and object and what they hold
MAX_NAME_LENGTH = 1_000
#: A recomputed value may differ from the stored one by REPLAY_RTOL (or 100 machine epsilons for
#: float16/32) times the stored array's largest magnitude.
REPLAY_RTOL = 1e-12
