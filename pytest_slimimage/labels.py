"""The labels the plugin puts on what it creates (a leaf module: no docker-py import)."""

LABEL_PREFIX = "io.github.pytest-slimimage"
LABEL_SESSION = f"{LABEL_PREFIX}.session"
"""Every image and container the plugin creates carries this label, valued with its session token."""
LABEL_WORKER = f"{LABEL_PREFIX}.worker"
"""Containers also carry this one, valued with the creating process's token (xdist workers differ)."""
LABEL_BASE = f"{LABEL_PREFIX}.base"
"""Base images made by scripts/base-images.sh carry this one."""

TAG_REPOSITORY = "pytest-slimimage"
"""The namespace of the plugin's tags: each image it builds stays tagged ``pytest-slimimage/<fixture>:<key>``."""
KEEP_BUILDS = 3
"""How many builds (tags) each fixture keeps on the engine, the most recently used first."""
