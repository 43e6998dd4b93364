"""workbench: learn how generative models of raw audio work, by running them."""
__version__ = "0.1.0"
