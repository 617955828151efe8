"""Generated gRPC code for conveyor.v1 (scripts/gen_protos.py); do not edit."""
