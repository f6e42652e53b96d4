"""crosspost — publish a public body's posts to every social network it uses.

Every post links back to the page on the body's own website where the same
information stands; nothing is truncated, nothing is published twice.
"""

__version__ = "0.1.0"
