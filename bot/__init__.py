"""The debtbot application: gateway, worker, supervisor, accounts and the CLI."""
