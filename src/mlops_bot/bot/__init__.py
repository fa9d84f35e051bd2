"""The webhook bot: verify GitHub deliveries, queue them durably, and act on PR comment commands."""
