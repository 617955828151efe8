"""The coordinator: gRPC services, scheduler, store."""
