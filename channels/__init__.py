"""Channel adapters: one module per messaging channel behind ``channels.base.Channel``."""
