"""charts stage."""
