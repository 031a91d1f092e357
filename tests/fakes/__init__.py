"""Local stand-ins of the providers' APIs, checked against the providers' own descriptions."""
