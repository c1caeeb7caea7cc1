"""asmr: image compression with Activation-Sharing Multi-Resolution coordinate networks."""

import os

__version__ = "0.1.0"

# torch's OpenMP threads spin while they wait by default. With two encodes at once on a
# 2-core machine each then ran 115 s instead of 8 s (kodim23_small, 300 steps); with
# passive waiting they take 8 s, and a lone encode is no slower than with the default.
# Set before torch is imported (the encoder imports it lazily); a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# numpy's BLAS (OpenBLAS) threads gain nothing on the decoder's small matrix products
# (n x 16 by 16 x 16 in the context model) and lose much when another process holds a
# core: carphone's 120 frames decoded in 4.3 s with one thread, 8.8 s with two, beside an
# encode. Set before numpy is imported; a user's setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
