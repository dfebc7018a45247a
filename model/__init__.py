"""il2als: a mechanistic model of low-dose IL-2 in ALS."""
__version__ = "0.1.0"
