"""The `conveyor` command line."""

import os

# gRPC's native layer prints its own account of a refused TLS handshake (and the like) at info
# level on stderr, above the one line the CLI says it in; keep it to errors unless asked.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
