"""Pictures for lectures and notebooks (matplotlib is imported only when a picture is drawn)."""
