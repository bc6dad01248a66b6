"""FinePseudo: semi-supervised fine-grained action recognition through temporal alignability."""
__version__ = "0.1.0"
